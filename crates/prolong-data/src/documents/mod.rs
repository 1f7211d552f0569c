//! Documents in: JSONL (plain, .gz, .zst) and plain-text files, read one
//! record at a time. A bad record is skipped and counted by reason with its
//! file and line; only an input that cannot be read at all is an error.
//!
//! Two options of [`Fields`] serve corpora that are not one document a row:
//! [`Select`] keeps the rows whose (possibly nested) field holds one of some
//! values (SlimPajama's sets by `meta.redpajama_set_name`), and
//! [`GroupFields`] makes one document per repository out of per-file rows
//! (The Stack, see [`group`]).

pub mod group;
pub(crate) mod jsonl;
pub(crate) mod mediawiki;
#[cfg(feature = "parquet")]
mod parquet;
mod text;

pub use jsonl::{JsonLine, JsonLines};

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One document: an id (from `--id-field`, else `FILE:LINE`) and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub text: String,
    /// Its repository and path, when [`Fields::group`] asks for them.
    pub file_of: Option<RepoFile>,
}

/// Where a row of a per-file corpus belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub repo: String,
    pub path: String,
    /// The row's 1-based line (JSONL) or row (Parquet) in its file.
    pub line: u64,
}

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    MalformedJson,
    InvalidUtf8,
    MissingTextField,
    TextNotAString,
    EmptyDocument,
    /// A compressed stream that breaks off or is corrupt: the rest of the file is lost.
    CorruptStream,
    /// A MediaWiki redirect page.
    Redirect,
    /// A MediaWiki page the file ends inside.
    TruncatedPage,
    /// A MediaWiki file that is not well-formed XML: the tokenize stage
    /// fails on it, naming where reading stopped.
    MalformedXml,
    /// The row's [`Select`] field holds none of the selected values (or is
    /// missing).
    NotSelected,
    /// A [`GroupFields`] field is missing or null.
    MissingGroupField,
    /// A second row of one repository and path: the first is kept.
    DuplicatePath,
    /// A file of a grouped repository with a line of the `==> PATH <==`
    /// header's form (as the repos stage skips it).
    HeaderCollision,
}

impl SkipReason {
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::MalformedJson => "malformed_json",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::MissingTextField => "missing_text_field",
            SkipReason::TextNotAString => "text_not_a_string",
            SkipReason::EmptyDocument => "empty_document",
            SkipReason::CorruptStream => "corrupt_stream",
            SkipReason::Redirect => "redirect",
            SkipReason::TruncatedPage => "truncated_page",
            SkipReason::MalformedXml => "malformed_xml",
            SkipReason::NotSelected => "not_selected",
            SkipReason::MissingGroupField => "missing_group_field",
            SkipReason::DuplicatePath => "duplicate_path",
            SkipReason::HeaderCollision => "header_collision",
        }
    }
}

/// A skipped record: what, where, and the detail of the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub reason: SkipReason,
    pub file: PathBuf,
    /// 1-based line of a JSONL record; 0 for a whole file.
    pub line: u64,
    pub detail: String,
}

impl Skipped {
    pub fn new(reason: SkipReason, file: &Path, line: u64, detail: String) -> Skipped {
        Skipped {
            reason,
            file: file.to_path_buf(),
            line,
            detail,
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} ({})",
            self.file.display(),
            self.line,
            self.reason.name(),
            self.detail
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{path}: {err}")]
    Open { path: PathBuf, err: std::io::Error },
    #[error(
        "{path}: unsupported input (expected .jsonl, .jsonl.gz, .jsonl.zst, .json, .txt, .md, .xml, .parquet)"
    )]
    UnknownFormat { path: PathBuf },
    /// A file that cannot be read as its format at all (`file:line: detail`).
    #[error("{0}")]
    Malformed(Skipped),
}

/// Which fields of a record hold the text and the id, and which rows to
/// keep. Field names are dotted paths into nested objects (JSONL) or
/// structs (Parquet): `meta.redpajama_set_name`.
///
/// Serialized with the names of tokenize's options, as a tokenize task's
/// marker records them (`text_field`, `id_field`, `select`, `group_by_repo`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fields {
    #[serde(rename = "text_field")]
    pub text: String,
    #[serde(rename = "id_field")]
    pub id: Option<String>,
    #[serde(default)]
    pub select: Option<Select>,
    /// Per-file rows grouped into one document per repository: a tokenize
    /// task then reads every input file (see [`group`]).
    #[serde(rename = "group_by_repo", default)]
    pub group: Option<GroupFields>,
}

/// The field holding a record's text unless told otherwise (JSONL's and
/// Parquet's usual `text`).
pub const DEFAULT_TEXT_FIELD: &str = "text";

impl Default for Fields {
    fn default() -> Self {
        Fields {
            text: DEFAULT_TEXT_FIELD.into(),
            id: None,
            select: None,
            group: None,
        }
    }
}

/// Keep only the rows whose `field` is a string equal to one of `values`;
/// the others are skipped as `not_selected`.
///
/// One type for both forms of the option: `--select-field F --select-values
/// A,B` on the command line (both or neither), `select = { field = "F",
/// values = ["A", "B"] }` in a recipe.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema, clap::Args,
)]
#[serde(deny_unknown_fields)]
pub struct Select {
    /// Keep only the rows whose FIELD (a dotted path into nested objects) holds
    /// one of the values.
    #[arg(
        id = "select_field",
        long = "select-field",
        value_name = "FIELD",
        required = false,
        requires = "select_values"
    )]
    pub field: String,
    /// The values FIELD may hold to be kept (comma-separated on the command line).
    #[arg(
        id = "select_values",
        long = "select-values",
        value_name = "VALUES",
        value_delimiter = ',',
        required = false,
        requires = "select_field"
    )]
    pub values: Vec<String>,
}

impl Select {
    pub fn keeps(&self, value: Option<&str>) -> bool {
        value.is_some_and(|v| self.values.iter().any(|x| x == v))
    }
}

/// The fields naming a row's repository and its path in the repository
/// (The Stack v1: `max_stars_repo_name` and `max_stars_repo_path`; newer
/// dumps: `repository_name` and `path`). Readers fill
/// [`Document::file_of`]; a row without them is `missing_group_field`.
///
/// `--repo-field R --path-field P` on the command line (both or neither),
/// `group_by_repo = { repo = "R", path = "P" }` in a recipe.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema, clap::Args,
)]
#[serde(deny_unknown_fields)]
pub struct GroupFields {
    /// Group rows into one document per repository named by this field (The
    /// Stack v1: max_stars_repo_name).
    #[arg(
        id = "repo_field",
        long = "repo-field",
        value_name = "FIELD",
        required = false,
        requires = "path_field"
    )]
    pub repo: String,
    /// The field holding a row's path in its repository (max_stars_repo_path).
    #[arg(
        id = "path_field",
        long = "path-field",
        value_name = "FIELD",
        required = false,
        requires = "repo_field"
    )]
    pub path: String,
}

pub type Record = Result<Document, Skipped>;

/// How an input file is read, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    JsonlGz,
    JsonlZst,
    Text,
    /// A MediaWiki XML dump (`.xml`).
    MediaWiki,
    /// Apache Parquet (`.parquet`), one document a row; read with the
    /// `parquet` feature (default-on), else an error.
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let jsonl = |stem: &str| {
            stem.ends_with(".jsonl") || stem.ends_with(".json") || stem.ends_with(".ndjson")
        };
        if let Some(stem) = name.strip_suffix(".gz") {
            jsonl(stem).then_some(Format::JsonlGz)
        } else if let Some(stem) = name.strip_suffix(".zst").or(name.strip_suffix(".zstd")) {
            jsonl(stem).then_some(Format::JsonlZst)
        } else if jsonl(&name) {
            Some(Format::Jsonl)
        } else if name.ends_with(".txt") || name.ends_with(".md") {
            Some(Format::Text)
        } else if name.ends_with(".xml") {
            Some(Format::MediaWiki)
        } else if name.ends_with(".parquet") {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

/// Opens one input file and yields its records in order.
pub fn read_documents(
    path: &Path,
    fields: &Fields,
) -> Result<Box<dyn Iterator<Item = Record> + Send>, DocumentError> {
    let format =
        Format::of(path).ok_or_else(|| DocumentError::UnknownFormat { path: path.into() })?;
    let open = |p: &Path| {
        std::fs::File::open(p).map_err(|err| DocumentError::Open {
            path: p.into(),
            err,
        })
    };
    Ok(match format {
        Format::Text => Box::new(std::iter::once(text::read_text(path).map_err(|err| {
            DocumentError::Open {
                path: path.into(),
                err,
            }
        })?)),
        Format::MediaWiki => Box::new(mediawiki::MediaWikiPages::new(path, open(path)?)),
        #[cfg(feature = "parquet")]
        Format::Parquet => Box::new(self::parquet::ParquetRecords::open(path, fields)?),
        #[cfg(not(feature = "parquet"))]
        Format::Parquet => {
            return Err(DocumentError::Open {
                path: path.into(),
                err: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "Parquet input needs prolong-data built with the `parquet` feature",
                ),
            });
        }
        Format::Jsonl | Format::JsonlGz | Format::JsonlZst => Box::new(jsonl::JsonlRecords::new(
            path,
            open_jsonl(path, format)?,
            fields.clone(),
        )),
    })
}

/// Opens a JSONL file (plain, .gz, .zst) and yields its JSON objects in order
/// (for records other than documents, such as chat conversations).
pub fn read_json_lines(path: &Path) -> Result<JsonLines<Box<dyn Read + Send>>, DocumentError> {
    match Format::of(path) {
        Some(format @ (Format::Jsonl | Format::JsonlGz | Format::JsonlZst)) => {
            Ok(JsonLines::new(path, open_jsonl(path, format)?))
        }
        _ => Err(DocumentError::UnknownFormat { path: path.into() }),
    }
}

/// The decompressed bytes of a JSONL file of `format`.
fn open_jsonl(path: &Path, format: Format) -> Result<Box<dyn Read + Send>, DocumentError> {
    let open_err = |err| DocumentError::Open {
        path: path.into(),
        err,
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    Ok(match format {
        Format::JsonlGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Format::JsonlZst => Box::new(zstd::stream::read::Decoder::new(file).map_err(open_err)?),
        _ => Box::new(file),
    })
}

/// Skips counted by reason, with the first few kept as examples.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SkipCounts {
    pub by_reason: BTreeMap<String, u64>,
    /// The first skips, as `file:line: reason (detail)`.
    pub examples: Vec<String>,
}

impl SkipCounts {
    const EXAMPLES: usize = 20;

    pub fn add(&mut self, skipped: &Skipped) {
        self.add_with_example(skipped.reason.name(), skipped.to_string());
    }

    /// Counts a skip of `reason` (one of a reader's own, such as chat's) and
    /// keeps `example` (`file:line: reason (detail)`) if among the first.
    pub fn add_with_example(&mut self, reason: &str, example: String) {
        self.add_reason(reason);
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(example);
        }
    }

    pub fn add_reason(&mut self, reason: &str) {
        *self.by_reason.entry(reason.into()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }

    pub fn merge(&mut self, other: &SkipCounts) {
        for (reason, n) in &other.by_reason {
            *self.by_reason.entry(reason.clone()).or_default() += n;
        }
        for e in &other.examples {
            if self.examples.len() < Self::EXAMPLES {
                self.examples.push(e.clone());
            }
        }
    }
}
