//! The committed schema is the generated one; stages agree across registry, CLI, schema and docs.

use super::*;

/// schemas/recipe.schema.json is generated from the stages' options types:
/// the committed file is `prolong-data schema`'s output. Regenerate it with
/// `prolong-data schema > schemas/recipe.schema.json` (or run this test with
/// PROLONG_WRITE_SCHEMA=1).
#[test]
fn the_committed_recipe_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/recipe.schema.json");
    let generated = prolong_data::recipe::recipe_schema_text().unwrap();
    if std::env::var_os("PROLONG_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schemas/recipe.schema.json is not the generated schema: run \
         `prolong-data schema > schemas/recipe.schema.json`"
    );
    let out = bin().arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// The subcommand names in `--help`'s command list.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description's wrapped lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// One list of stages: the registry, the CLI's subcommands, the schema's step
/// kinds, `run --help` and docs/adding-a-stage.md name the same stages; a
/// key that a stage takes on the command line and in a recipe has one
/// default in both.
#[test]
fn stages_agree_across_registry_cli_schema_and_docs() {
    use prolong_data::stage::STAGES;
    let registered: Vec<&str> = STAGES.iter().map(|s| s.name).collect();

    let help = String::from_utf8(bin().arg("--help").output().unwrap().stdout).unwrap();
    let tools = [
        "inspect", "verify", "merge", "run", "stats", "schema", "help",
    ];
    let mut cli: Vec<String> = subcommands(&help)
        .into_iter()
        .filter(|c| !tools.contains(&c.as_str()))
        .collect();
    let mut sorted = registered.clone();
    sorted.sort();
    cli.sort();
    assert_eq!(cli, sorted, "CLI subcommands that are not tools: {help}");

    let schema = prolong_data::recipe::recipe_schema();
    let kinds: Vec<&str> = schema["properties"]["step"]["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["properties"]["stage"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, registered);

    let run_help =
        String::from_utf8(bin().args(["run", "--help"]).output().unwrap().stdout).unwrap();
    for name in &registered {
        assert!(run_help.contains(name), "run --help does not name {name}");
    }

    let page = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join("adding-a-stage.md");
    let docs = std::fs::read_to_string(page).unwrap();
    let documented: Vec<&str> = docs
        .lines()
        .skip_while(|l| !l.starts_with("## The stages"))
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(
        documented, registered,
        "docs/adding-a-stage.md, ## The stages"
    );

    for (info, kind) in STAGES.iter().zip(&kinds) {
        let keys = &schema["properties"]["step"]["items"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["properties"]["stage"]["const"] == *kind)
            .unwrap()["properties"];
        let mut command = (info.command)();
        // Built, flags show their implicit default ("false").
        command.build();
        for arg in command.get_arguments() {
            let Some(key) = keys.get(arg.get_id().as_str()) else {
                continue;
            };
            let cli_default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let recipe_default: Vec<String> = match key.get("default") {
                None => Vec::new(),
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) if a.is_empty() => Vec::new(),
                Some(other) => vec![other.to_string()],
            };
            assert_eq!(
                cli_default,
                recipe_default,
                "{}: `{}` has another default on the command line than in a recipe",
                info.name,
                arg.get_id()
            );
        }
    }
}
