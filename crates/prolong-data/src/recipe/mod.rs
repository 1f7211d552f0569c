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
//! Each step's keys mirror its CLI command's options (`--min-tokens` →
//! `min_tokens`); a key that is unknown, or that its stage does not take, is
//! an error naming the file and line. Paths are relative to the recipe's
//! folder unless absolute. The schema is `schemas/recipe.schema.json`.

pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use run::{RunOptions, StepOutcome, StepReport, run_recipe, step_status};

/// The stages a step can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Repos,
    Tokenize,
    /// A chat set generated from plain texts (one JSONL file).
    #[serde(rename = "chat-synth")]
    ChatSynth,
    /// Conversations tokenized with a loss mask.
    Chat,
    Filter,
    Sample,
    Pack,
    Mix,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Repos => "repos",
            Stage::Tokenize => "tokenize",
            Stage::ChatSynth => "chat-synth",
            Stage::Chat => "chat",
            Stage::Filter => "filter",
            Stage::Sample => "sample",
            Stage::Pack => "pack",
            Stage::Mix => "mix",
        }
    }

    /// Whether `--rank R --world-size N` splits the step into tasks.
    pub fn is_sharded(self) -> bool {
        matches!(
            self,
            Stage::Repos
                | Stage::Tokenize
                | Stage::Chat
                | Stage::Filter
                | Stage::Sample
                | Stage::Pack
        )
    }

    /// The keys a step of this stage takes (besides `name`, `stage`, `out`).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Stage::Repos => &[
                "input",
                "max_file_bytes",
                "max_files",
                "max_repo_bytes",
                "max_depth",
                "dedup_files",
                "source",
            ],
            Stage::Tokenize => &[
                "inputs",
                "source",
                "tokenizer",
                "domain",
                "text_field",
                "id_field",
                "size_limit",
                "select",
                "group_by_repo",
            ],
            Stage::ChatSynth => &["texts", "conversations", "seed"],
            Stage::Chat => &[
                "inputs",
                "tokenizer",
                "tokenizer_config",
                "domain",
                "size_limit",
            ],
            Stage::Filter => &["inputs", "min_tokens", "max_tokens", "size_limit"],
            Stage::Sample => &["sources", "tokens", "seed", "size_limit"],
            Stage::Pack => &[
                "inputs",
                "len",
                "min_length",
                "split_by_lengths",
                "intact",
                "bos",
                "eos",
                "domain",
                "compression",
                "size_limit",
            ],
            Stage::Mix => &[
                "streams",
                "preset",
                "root",
                "allow_missing",
                "sequence_length",
            ],
        }
    }
}

/// A Hugging Face Hub dataset as the input of a tokenize step: the files of
/// `revision` matching `files` (globs), from the local HF cache (see
/// [`crate::hub`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

/// `source`: the documents' source field (repos) or a hub dataset (tokenize).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SourceKey {
    Name(String),
    Hub(HubSource),
}

/// One source of a sample step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSourceSpec {
    /// The output folder's name (default: the path's folder name).
    pub name: Option<String>,
    pub path: String,
    pub share: f64,
}

/// One stream of a mix step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpecKey {
    pub name: Option<String>,
    pub path: String,
    pub proportion: f64,
}

/// A step as written: every key of every stage, checked against the stage
/// by [`Recipe::parse`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub stage: Stage,
    /// The output folder (the manifest file for mix).
    pub out: String,
    // repos
    pub input: Option<String>,
    pub max_file_bytes: Option<u64>,
    pub max_files: Option<u64>,
    pub max_repo_bytes: Option<u64>,
    pub max_depth: Option<u64>,
    pub dedup_files: Option<bool>,
    pub source: Option<SourceKey>,
    // tokenize, filter, pack
    pub inputs: Option<Vec<String>>,
    pub tokenizer: Option<String>,
    pub domain: Option<String>,
    pub text_field: Option<String>,
    pub id_field: Option<String>,
    pub size_limit: Option<u64>,
    /// `{ field = "meta.redpajama_set_name", values = ["RedPajamaBook"] }`
    pub select: Option<crate::documents::Select>,
    /// `{ repo = "max_stars_repo_name", path = "max_stars_repo_path" }`
    pub group_by_repo: Option<crate::documents::GroupFields>,
    // chat-synth
    pub texts: Option<Vec<String>>,
    pub conversations: Option<u64>,
    // chat
    pub tokenizer_config: Option<String>,
    // filter
    pub min_tokens: Option<u64>,
    pub max_tokens: Option<u64>,
    // sample
    pub sources: Option<Vec<SampleSourceSpec>>,
    pub tokens: Option<u64>,
    pub seed: Option<u64>,
    // pack
    pub len: Option<usize>,
    pub min_length: Option<usize>,
    pub split_by_lengths: Option<Vec<usize>>,
    pub intact: Option<bool>,
    /// A token id, or `false` for none.
    pub bos: Option<TokenOrNone>,
    pub eos: Option<TokenOrNone>,
    pub compression: Option<String>,
    // mix
    pub streams: Option<Vec<StreamSpecKey>>,
    pub preset: Option<String>,
    pub root: Option<String>,
    pub allow_missing: Option<bool>,
    pub sequence_length: Option<u64>,
}

/// `bos = 128000` or `bos = false`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TokenOrNone {
    Id(u32),
    Flag(bool),
}

impl TokenOrNone {
    /// The id to add, `default` for `true`, none for `false`.
    pub fn resolve(self, default: u32) -> Option<u32> {
        match self {
            TokenOrNone::Id(id) => Some(id),
            TokenOrNone::Flag(true) => Some(default),
            TokenOrNone::Flag(false) => None,
        }
    }
}

impl Step {
    /// The optional keys present, by name.
    fn present_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut add = |present: bool, key: &'static str| {
            if present {
                keys.push(key)
            }
        };
        add(self.input.is_some(), "input");
        add(self.max_file_bytes.is_some(), "max_file_bytes");
        add(self.max_files.is_some(), "max_files");
        add(self.max_repo_bytes.is_some(), "max_repo_bytes");
        add(self.max_depth.is_some(), "max_depth");
        add(self.dedup_files.is_some(), "dedup_files");
        add(self.source.is_some(), "source");
        add(self.inputs.is_some(), "inputs");
        add(self.tokenizer.is_some(), "tokenizer");
        add(self.domain.is_some(), "domain");
        add(self.text_field.is_some(), "text_field");
        add(self.id_field.is_some(), "id_field");
        add(self.size_limit.is_some(), "size_limit");
        add(self.select.is_some(), "select");
        add(self.group_by_repo.is_some(), "group_by_repo");
        add(self.texts.is_some(), "texts");
        add(self.conversations.is_some(), "conversations");
        add(self.tokenizer_config.is_some(), "tokenizer_config");
        add(self.min_tokens.is_some(), "min_tokens");
        add(self.max_tokens.is_some(), "max_tokens");
        add(self.sources.is_some(), "sources");
        add(self.tokens.is_some(), "tokens");
        add(self.seed.is_some(), "seed");
        add(self.len.is_some(), "len");
        add(self.min_length.is_some(), "min_length");
        add(self.split_by_lengths.is_some(), "split_by_lengths");
        add(self.intact.is_some(), "intact");
        add(self.bos.is_some(), "bos");
        add(self.eos.is_some(), "eos");
        add(self.compression.is_some(), "compression");
        add(self.streams.is_some(), "streams");
        add(self.preset.is_some(), "preset");
        add(self.root.is_some(), "root");
        add(self.allow_missing.is_some(), "allow_missing");
        add(self.sequence_length.is_some(), "sequence_length");
        keys
    }

    /// What the stage needs and does not allow, as (key, problem).
    fn check(&self) -> Option<(&'static str, String)> {
        let allowed = self.stage.keys();
        if let Some(key) = self
            .present_keys()
            .into_iter()
            .find(|k| !allowed.contains(k))
        {
            return Some((
                key,
                format!(
                    "step {:?}: key `{key}` does not apply to stage {} (it takes: name, stage, out, {})",
                    self.name,
                    self.stage.name(),
                    allowed.join(", ")
                ),
            ));
        }
        let missing = |key: &str| {
            format!(
                "step {:?}: stage {} needs `{key}`",
                self.name,
                self.stage.name()
            )
        };
        match self.stage {
            Stage::Repos if self.input.is_none() => Some(("name", missing("input"))),
            Stage::Repos if matches!(self.source, Some(SourceKey::Hub(_))) => Some((
                "source",
                format!(
                    "step {:?}: repos takes `source` as a string (the documents' source field)",
                    self.name
                ),
            )),
            Stage::Tokenize => match (&self.inputs, &self.source) {
                (None, None) => Some(("name", missing("inputs` or `source"))),
                (_, Some(SourceKey::Name(_))) => Some((
                    "source",
                    format!(
                        "step {:?}: tokenize takes `source = {{ hf = \"org/name\", revision = \"main\", files = [\"glob\"] }}`",
                        self.name
                    ),
                )),
                _ => None,
            },
            Stage::ChatSynth if self.texts.is_none() => Some(("name", missing("texts"))),
            Stage::ChatSynth if self.conversations.is_none() => {
                Some(("name", missing("conversations")))
            }
            Stage::Chat | Stage::Filter | Stage::Pack if self.inputs.is_none() => {
                Some(("name", missing("inputs")))
            }
            Stage::Pack if self.len.is_none() => Some(("name", missing("len"))),
            Stage::Sample if self.sources.is_none() => Some(("name", missing("sources"))),
            Stage::Sample if self.tokens.is_none() => Some(("name", missing("tokens"))),
            Stage::Mix if self.streams.is_none() == self.preset.is_none() => Some((
                "name",
                format!(
                    "step {:?}: mix takes either `streams` or `preset` (with `root`)",
                    self.name
                ),
            )),
            Stage::Mix if self.preset.is_some() && self.root.is_none() => {
                Some(("preset", missing("root")))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    tokenizer: Option<String>,
    #[serde(default)]
    step: Vec<Step>,
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
        let mut names = std::collections::BTreeSet::new();
        // Each step's output as written (variables unexpanded): two steps
        // writing one folder would skip or clobber each other's tasks.
        let mut outs = std::collections::BTreeMap::new();
        let mut steps = Vec::new();
        for (index, step) in file.step.into_iter().enumerate() {
            if let Some((key, message)) = step.check() {
                return Err(at(key_offset(text, index, key), message));
            }
            if !names.insert(step.name.clone()) {
                return Err(at(
                    key_offset(text, index, "name"),
                    format!("two steps are named {:?}", step.name),
                ));
            }
            let out = step.out.trim_end_matches('/').to_string();
            if let Some(first) = outs.insert(out, step.name.clone()) {
                return Err(at(
                    key_offset(text, index, "out"),
                    format!(
                        "steps {first:?} and {:?} both write out = {:?}; give each its own",
                        step.name, step.out
                    ),
                ));
            }
            steps.push(step);
        }
        if steps.is_empty() {
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

/// The offset of `key` in step `index` of the recipe's text (the file's
/// start when it cannot be found).
fn key_offset(text: &str, index: usize, key: &str) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(root) = DeTable::parse(text) else {
        return 0;
    };
    let Some((_, steps)) = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == "step")
    else {
        return 0;
    };
    let Some(step) = steps.get_ref().get(index) else {
        return 0;
    };
    match step.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map_or(step.span().start, |(k, _)| k.span().start),
        _ => step.span().start,
    }
}
