//! Recipes: the corpus stages as one TOML file, run in order by
//! `prolong-data run` (see [`run`]).
//!
//! ```toml
//! tokenizer = "${DATA}/tokenizer.json"   # default of tokenize steps
//!
//! [vars]                      # ${NAME} in any string; the environment wins
//! DATA = "../data"
//!
//! [[step]]
//! name = "tokenize-book"
//! stage = "tokenize"          # repos | tokenize | chat-synth | chat | filter | sample | pack | mix
//! inputs = ["books/"]
//! out = "${DATA}/tok/book"
//! domain = "book"
//! ```
//!
//! Each step's keys are its stage's options type (see [`crate::stage`]), as
//! its CLI command's options are (`--min-tokens` → `min_tokens`); a key that
//! is unknown, or that its stage does not take, is an error naming the file
//! and line. Paths are relative to the recipe's folder unless absolute. The
//! schema, `schemas/recipe.schema.json`, is generated from the same types.

pub mod run;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use run::{RunOptions, StepOutcome, StepReport, run_recipe, step_status};
pub use schema::{recipe_schema, recipe_schema_text};

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::stage::{STAGES, StepOptions};

/// A Hugging Face Hub dataset as the input of a tokenize step: the files of
/// `revision` matching `files` (globs), from the local HF cache (see
/// [`crate::hub`]).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// `org/name` of a dataset repository.
    pub hf: String,
    #[serde(default = "main")]
    pub revision: String,
    /// Globs of paths inside the repository (`data/*.parquet`).
    pub files: Vec<String>,
}

fn main() -> String {
    "main".into()
}

/// A recipe step: its name and its stage's options (the `stage` key is the
/// tag, see [`crate::stage`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub stage: StepOptions,
}

impl Step {
    /// The output folder (the file for mix and chat-synth), as written.
    pub fn out(&self) -> &Path {
        self.stage.out()
    }
}

/// A recipe file: its steps run in order by `prolong-data run`. Strings may
/// use ${NAME} (the environment first, then [vars]); paths are relative to
/// the recipe's folder unless absolute. Unknown keys are errors.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "prolong-data recipe (TOML), as run by `prolong-data run`")]
pub(crate) struct RecipeFile {
    /// What the recipe makes (free text).
    description: Option<String>,
    /// Values of ${NAME} in any string (the environment wins); they may use
    /// other variables.
    #[serde(default)]
    vars: BTreeMap<String, String>,
    /// Default tokenizer.json of tokenize and chat steps.
    tokenizer: Option<String>,
    /// The steps, run in order: each takes the keys of the stage its
    /// `stage` names.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    step: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    /// A TOML, key or type error, with where it is.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Vars { path: PathBuf, message: String },
}

/// The most bytes one expanded value may have: values are paths, names and
/// settings, far below this.
pub const MAX_EXPANDED_BYTES: usize = 64 << 10;
/// The most `${NAME}` substitutions one value may take, variables within
/// variables included.
pub const MAX_SUBSTITUTIONS: usize = 10_000;

/// A parsed and checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// The folder relative paths resolve against.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub tokenizer: Option<String>,
    pub steps: Vec<Step>,
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|err| RecipeError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        Recipe::parse(&text, path)
    }

    /// Parses `text` as the recipe file `path` (used for error messages and
    /// to resolve relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Recipe, RecipeError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            RecipeError::At {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let file: RecipeFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().trim().to_string())
        })?;
        // The steps again, with spans: each is read as its stage's options.
        let root = DeTable::parse(text).map_err(|e| {
            at(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        let tables = match root.get_ref().get("step").map(|s| s.get_ref()) {
            Some(DeValue::Array(steps)) => steps.iter().cloned().collect(),
            _ => Vec::new(),
        };
        let mut names = std::collections::BTreeSet::new();
        // Each step's output as written (variables unexpanded): two steps
        // writing one folder would skip or clobber each other's tasks.
        let mut outs = std::collections::BTreeMap::new();
        let mut steps = Vec::new();
        for table in tables {
            let span = table.span();
            let DeValue::Table(table) = table.into_inner() else {
                return Err(at(span.start, "a [[step]] is a table".into()));
            };
            let key_at = |key: &str| key_offset(&table, key).unwrap_or(span.start);
            let step = parse_step(table.clone(), span.clone()).map_err(|(place, message)| {
                let offset = match place {
                    ErrorAt::Key(key) => key_at(&key),
                    ErrorAt::Offset(offset) => offset.unwrap_or(span.start),
                };
                at(offset, message)
            })?;
            if let Err((key, message)) = step.stage.check(&step.name) {
                return Err(at(key_at(key), message));
            }
            if !names.insert(step.name.clone()) {
                return Err(at(
                    key_at("name"),
                    format!("two steps are named {:?}", step.name),
                ));
            }
            let written = step.out().to_string_lossy().into_owned();
            let out = written.trim_end_matches('/').to_string();
            if let Some(first) = outs.insert(out, step.name.clone()) {
                return Err(at(
                    key_at("out"),
                    format!(
                        "steps {first:?} and {:?} both write out = {written:?}; give each its own",
                        step.name
                    ),
                ));
            }
            steps.push(step);
        }
        if file.step.is_empty() {
            return Err(RecipeError::Invalid {
                path: path.to_path_buf(),
                message: "no [[step]]".into(),
            });
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Ok(Recipe {
            path: path.to_path_buf(),
            dir,
            description: file.description,
            vars: file.vars,
            tokenizer: file.tokenizer,
            steps,
        })
    }

    /// `${NAME}` replaced: the environment first, then `[vars]` (whose values
    /// may use other variables). Bounded in size and work: variables that
    /// repeat others (`V0 = "${V1}${V1}..."`, each level wider) would
    /// otherwise grow exponentially.
    pub fn expand(&self, value: &str) -> Result<String, RecipeError> {
        let mut substitutions = 0;
        self.expand_depth(value, 0, &mut substitutions)
    }

    fn expand_depth(
        &self,
        value: &str,
        depth: usize,
        substitutions: &mut usize,
    ) -> Result<String, RecipeError> {
        let err = |message: String| RecipeError::Vars {
            path: self.path.clone(),
            message,
        };
        if depth > 16 {
            return Err(err(format!("variables nest too deep in {value:?}")));
        }
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| err(format!("unclosed ${{ in {value:?}")))?;
            let name = &after[..end];
            *substitutions += 1;
            if *substitutions > MAX_SUBSTITUTIONS {
                return Err(err(format!(
                    "{value:?} takes more than {MAX_SUBSTITUTIONS} substitutions \
                     (variables that repeat each other grow exponentially)"
                )));
            }
            let resolved = match std::env::var(name) {
                Ok(v) => v,
                Err(_) => match self.vars.get(name) {
                    Some(v) => self.expand_depth(v, depth + 1, substitutions)?,
                    None => {
                        return Err(err(format!(
                            "${{{name}}} in {value:?} is neither in [vars] nor in the environment"
                        )));
                    }
                },
            };
            out.push_str(&resolved);
            if out.len() > MAX_EXPANDED_BYTES {
                return Err(err(format!(
                    "{value:?} expands to more than {MAX_EXPANDED_BYTES} bytes \
                     (variables that repeat each other grow exponentially)"
                )));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A path: variables expanded, relative to the recipe's folder unless
    /// absolute, with `.` and `..` resolved lexically (as mix does).
    pub fn path(&self, value: &str) -> Result<PathBuf, RecipeError> {
        let expanded = PathBuf::from(self.expand(value)?);
        let joined = if expanded.is_absolute() {
            expanded
        } else {
            self.dir.join(expanded)
        };
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// The offset of `key` in a step's table.
fn key_offset(table: &DeTable<'_>, key: &str) -> Option<usize> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, _)| k.span().start)
}

/// Where a step's error is: at a key, or at an offset (a value's span;
/// none: the step's start).
enum ErrorAt {
    Key(String),
    Offset(Option<usize>),
}

type StepParseError = (ErrorAt, String);

/// Reads a step's table as its stage's options: the stage named by `stage`,
/// each key one that stage takes (read from its schema), the keys it needs
/// present, then the values through serde (type errors keep their spans).
fn parse_step<'i>(table: DeTable<'i>, span: Range<usize>) -> Result<Step, StepParseError> {
    #[derive(Deserialize)]
    struct Head {
        name: String,
        stage: String,
    }
    let value = |table: DeTable<'i>| -> toml::de::ValueDeserializer<'i> {
        toml::de::ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table)))
    };
    let spanned = |e: toml::de::Error| {
        let offset = e.span().map(|s| s.start);
        (ErrorAt::Offset(offset), e.message().trim().to_string())
    };
    let head = Head::deserialize(value(table.clone())).map_err(spanned)?;
    let Some(info) = crate::stage::find(&head.stage) else {
        let names: Vec<String> = STAGES.iter().map(|s| format!("`{}`", s.name)).collect();
        let value = table.iter().find(|(k, _)| k.get_ref().as_ref() == "stage");
        return Err((
            ErrorAt::Offset(value.map(|(_, v)| v.span().start)),
            format!(
                "unknown variant `{}`, expected one of {}",
                head.stage,
                names.join(", ")
            ),
        ));
    };
    let (takes, needs) = crate::stage::keys(info);
    for key in table.keys() {
        let key = key.get_ref().as_ref();
        if key == "name" || key == "stage" || takes.iter().any(|k| k == key) {
            continue;
        }
        let elsewhere = STAGES
            .iter()
            .any(|s| crate::stage::keys(s).0.iter().any(|k| k == key));
        let message = if elsewhere {
            let others: Vec<&str> = takes
                .iter()
                .map(String::as_str)
                .filter(|k| *k != "out")
                .collect();
            format!(
                "step {:?}: key `{key}` does not apply to stage {} (it takes: name, stage, out, {})",
                head.name,
                info.name,
                others.join(", ")
            )
        } else {
            format!(
                "unknown field `{key}`, expected one of `name`, `stage`, {}",
                takes
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err((ErrorAt::Key(key.to_string()), message));
    }
    if let Some(key) = needs.iter().find(|k| key_offset(&table, k).is_none()) {
        return Err((
            ErrorAt::Key("name".into()),
            format!("step {:?}: stage {} needs `{key}`", head.name, info.name),
        ));
    }
    let mut keys = DeTable::new();
    for (key, v) in table {
        if !matches!(key.get_ref().as_ref(), "name" | "stage") {
            keys.insert(key, v);
        }
    }
    let stage = (info.parse)(value(keys)).map_err(spanned)?;
    Ok(Step {
        name: head.name,
        stage,
    })
}
