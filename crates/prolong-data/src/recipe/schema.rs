//! `schemas/recipe.schema.json`, generated from the stages' options types
//! (`prolong-data schema`); a test checks that the committed file is this.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::{RecipeFile, Step};
use crate::stage::{STAGES, StageInfo};

/// Where the schema says it lives.
const ID: &str = "https://github.com/prolong-rs/schemas/recipe.schema.json";

/// One kind of step: `name`, `stage` (the stage's name) and the keys of the
/// stage's options type.
fn step_schema(info: &StageInfo, generator: &mut SchemaGenerator) -> Value {
    let schema = (info.schema)(generator).to_value();
    let field = |key: &str| schema.get(key).cloned();
    let mut properties = Map::new();
    properties.insert(
        "name".into(),
        json!({ "type": "string", "description": "Unique step name (run --step NAME)." }),
    );
    properties.insert("stage".into(), json!({ "const": info.name }));
    if let Some(Value::Object(keys)) = field("properties") {
        properties.extend(keys);
    }
    let mut required = vec![json!("name"), json!("stage")];
    if let Some(Value::Array(keys)) = field("required") {
        required.extend(keys);
    }
    json!({
        "title": info.name,
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}

/// A step is one of the registered stages' (the `stage` key says which).
impl JsonSchema for Step {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let kinds: Vec<Value> = STAGES
            .iter()
            .map(|info| step_schema(info, generator))
            .collect();
        schemars::json_schema!({ "oneOf": kinds })
    }
}

/// TOML has no null: an optional key is one left out. Drops the `null`
/// alternatives and defaults schemars gives `Option` fields.
fn without_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            let single = match map.get_mut("anyOf") {
                Some(Value::Array(any)) => {
                    any.retain(|s| s.get("type") != Some(&json!("null")));
                    if any.len() == 1 { any.pop() } else { None }
                }
                _ => None,
            };
            if let Some(Value::Object(only)) = single {
                map.remove("anyOf");
                for (key, v) in only {
                    map.entry(key).or_insert(v);
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}

/// The recipe's JSON schema, as committed in schemas/recipe.schema.json.
pub fn recipe_schema() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    // One self-contained object per step kind, readable without $refs.
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<RecipeFile>()
        .to_value();
    without_null(&mut schema);
    let Value::Object(mut root) = schema else {
        return schema;
    };
    if let Some(step) = root.get_mut("properties").and_then(|p| p.get_mut("step")) {
        step["minItems"] = json!(1);
        if let Value::Object(step) = step {
            step.remove("default");
        }
    }
    let mut ordered = Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(v) = root.remove(key) {
            ordered.insert(key.into(), v);
        }
        if key == "$schema" {
            ordered.insert("$id".into(), json!(ID));
        }
    }
    ordered.insert("required".into(), json!(["step"]));
    ordered.extend(root);
    Value::Object(ordered)
}

/// [`recipe_schema`] as the committed file's text.
pub fn recipe_schema_text() -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(&recipe_schema())?;
    text.push('\n');
    Ok(text)
}
