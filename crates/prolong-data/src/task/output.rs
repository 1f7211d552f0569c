//! The checks before a stage reads anything: the output apart from the
//! inputs, and the settings in the run's markers equal to this run's.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Task;
use super::markers::settings_value;

/// Why a stage refuses its output folder, or could not finish it.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "{out}: {task} was made with other settings ({what}); use another --out, \
         or remove {out} to start afresh"
    )]
    SettingsChanged {
        out: PathBuf,
        task: String,
        what: String,
    },
    #[error(
        "--out {out} {relation} the input {input}: a stage never writes where it reads; \
         choose an output folder apart from the inputs"
    )]
    Overlaps {
        out: PathBuf,
        relation: &'static str,
        input: PathBuf,
    },
    #[error(
        "{dir}: holds {found}, from a run with another --world-size; \
         use a fresh output folder per world size"
    )]
    OtherWorldSize { dir: PathBuf, found: String },
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
}

impl Task<'_> {
    /// What every stage checks before it reads anything: that `out` is not
    /// an input, inside one or holding one (writing there destroys what is
    /// read), and that every marker of this run in `out` holds `settings`
    /// (an object of the stage's settings): a re-run with other settings
    /// would keep or mix outputs made with the old ones. Markers without
    /// recorded settings (empty, or not JSON) are not compared.
    pub fn check_output(
        &self,
        inputs: &[PathBuf],
        settings: &impl Serialize,
    ) -> Result<(), OutputError> {
        check_apart(self.out, inputs)?;
        // Through text and back, as the marker's settings come: floats then
        // compare equal even where a parse is an ulp off.
        let now = settings_value(settings);
        let now: serde_json::Value =
            serde_json::from_str(&now.to_string()).expect("JSON reads back");
        for task in self.every() {
            let Ok(bytes) = std::fs::read(task.marker_path()) else {
                continue;
            };
            let Ok(serde_json::Value::Object(then)) = serde_json::from_slice(&bytes) else {
                continue;
            };
            if let Some(what) = first_difference(&then, &now) {
                return Err(OutputError::SettingsChanged {
                    out: self.out.to_path_buf(),
                    task: task.spec.name(),
                    what,
                });
            }
        }
        Ok(())
    }
}

/// The first setting (in `now`'s order, then `then`'s) whose value differs,
/// as `NAME was OLD, now NEW`.
fn first_difference(
    then: &serde_json::Map<String, serde_json::Value>,
    now: &serde_json::Value,
) -> Option<String> {
    let empty = serde_json::Map::new();
    let now = now.as_object().unwrap_or(&empty);
    let show = |v: Option<&serde_json::Value>| {
        let s = v.map_or("unset".to_string(), |v| v.to_string());
        match s.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &s[..at]),
            None => s,
        }
    };
    now.keys()
        .chain(then.keys().filter(|k| !now.contains_key(*k)))
        .find(|k| then.get(*k) != now.get(*k))
        .map(|k| format!("{k} was {}, now {}", show(then.get(k)), show(now.get(k))))
}

/// Refuses an output folder equal to, inside or holding an input (paths
/// compared canonicalised, so links and `..` do not hide it).
pub fn check_apart(out: &Path, inputs: &[PathBuf]) -> Result<(), OutputError> {
    let out_real = canonical_lenient(out)?;
    for input in inputs {
        let Ok(input_real) = input.canonicalize() else {
            // A missing input is the stage's own error to report.
            continue;
        };
        let relation = if out_real == input_real {
            "is"
        } else if out_real.starts_with(&input_real) {
            "is inside"
        } else if input_real.starts_with(&out_real) {
            "holds"
        } else {
            continue;
        };
        return Err(OutputError::Overlaps {
            out: out.to_path_buf(),
            relation,
            input: input.clone(),
        });
    }
    Ok(())
}

/// `path` canonicalised where it exists: its deepest existing ancestor
/// canonicalised, with the rest appended.
fn canonical_lenient(path: &Path) -> Result<PathBuf, OutputError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|err| OutputError::Io {
                path: path.to_path_buf(),
                err,
            })?
            .join(path)
    };
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(real) = base.canonicalize() {
            let mut real = real;
            for part in rest.iter().rev() {
                real.push(part);
            }
            return Ok(real);
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            // `..` past a missing folder, or the root: compare as given.
            _ => return Ok(abs),
        }
    }
}
