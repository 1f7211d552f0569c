//! One task of a `--rank R --world-size N` run of a stage, as a Slurm job
//! array runs them: task R takes inputs R, R+N, R+2N, ...; writes its own
//! output, then its stats file, then its completion marker, last. A re-run
//! skips a task whose marker exists and redoes one without from scratch.
//!
//! Every stage goes through the same steps here: [`TaskSpec::check_output`]
//! before it reads anything (the output apart from the inputs, and the
//! settings recorded in the run's markers equal to this run's),
//! [`TaskSpec::clear_output`] before it redoes a task, [`TaskSpec::complete`]
//! after, and [`TaskSpec::merge_if_complete_in`] on every run, so a merged
//! index a kill left unwritten is written by the next run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which task of how many this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub rank: usize,
    pub world_size: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("--rank {rank} must be below --world-size {world_size} (and world size at least 1)")]
    BadRank { rank: usize, world_size: usize },
    #[error("{var}={value:?} is not a number")]
    BadEnv { var: &'static str, value: String },
}

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
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Mds(#[from] prolong_mds::MdsError),
}

impl TaskSpec {
    pub fn new(rank: usize, world_size: usize) -> Result<TaskSpec, TaskError> {
        if world_size == 0 || rank >= world_size {
            return Err(TaskError::BadRank { rank, world_size });
        }
        Ok(TaskSpec { rank, world_size })
    }

    /// The given values, else SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT,
    /// else task 0 of 1.
    pub fn resolve(rank: Option<usize>, world_size: Option<usize>) -> Result<TaskSpec, TaskError> {
        fn env(var: &'static str) -> Result<Option<usize>, TaskError> {
            match std::env::var(var) {
                Ok(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| TaskError::BadEnv { var, value }),
                Err(_) => Ok(None),
            }
        }
        let rank = match rank {
            Some(r) => r,
            None => env("SLURM_ARRAY_TASK_ID")?.unwrap_or(0),
        };
        let world_size = match world_size {
            Some(w) => w,
            None => env("SLURM_ARRAY_TASK_COUNT")?.unwrap_or(1),
        };
        TaskSpec::new(rank, world_size)
    }

    /// `proc{rank}-{world_size}`, rank zero-padded to the width of world_size
    /// (`proc0-1`, `proc07-64`): ProLong's names.
    pub fn name(&self) -> String {
        let width = self.world_size.to_string().len();
        format!("proc{:0width$}-{}", self.rank, self.world_size)
    }

    /// This task's share of `items`: R, R+N, R+2N, ...
    pub fn take<'a, T>(&self, items: &'a [T]) -> impl Iterator<Item = &'a T> + 'a {
        items.iter().skip(self.rank).step_by(self.world_size)
    }

    pub fn stats_path(&self, out: &Path) -> PathBuf {
        out.join(format!("{}.stats.json", self.name()))
    }

    pub fn marker_path(&self, out: &Path) -> PathBuf {
        out.join(format!("{}.done", self.name()))
    }

    pub fn is_done(&self, out: &Path) -> bool {
        self.marker_path(out).is_file()
    }

    /// Whether every task of this run has its marker.
    pub fn all_done(&self, out: &Path) -> bool {
        (0..self.world_size).all(|rank| TaskSpec { rank, ..*self }.is_done(out))
    }

    /// Writes the stats file, then the completion marker holding `settings`
    /// (see [`TaskSpec::check_output`]): in that order, so a marker always has
    /// its stats beside it.
    pub fn complete<S: Serialize>(
        &self,
        out: &Path,
        stats: &S,
        settings: &impl Serialize,
    ) -> Result<(), prolong_mds::MdsError> {
        let json = serde_json::to_vec_pretty(stats).expect("stats are plain data");
        prolong_mds::write_atomic(&self.stats_path(out), &json)?;
        let mut marker =
            serde_json::to_vec_pretty(&settings_value(settings)).expect("settings are plain data");
        marker.push(b'\n');
        prolong_mds::write_atomic(&self.marker_path(out), &marker)
    }

    /// What every stage checks before it reads anything: that `out` is not
    /// an input, inside one or holding one (writing there destroys what is
    /// read), and that every marker of this run in `out` holds `settings`
    /// (an object of the stage's settings): a re-run with other settings
    /// would keep or mix outputs made with the old ones. Markers without
    /// recorded settings (empty, or not JSON) are not compared.
    pub fn check_output(
        &self,
        out: &Path,
        inputs: &[PathBuf],
        settings: &impl Serialize,
    ) -> Result<(), OutputError> {
        check_apart(out, inputs)?;
        // Through text and back, as the marker's settings come: floats then
        // compare equal even where a parse is an ulp off.
        let now = settings_value(settings);
        let now: serde_json::Value =
            serde_json::from_str(&now.to_string()).expect("JSON reads back");
        for rank in 0..self.world_size {
            let task = TaskSpec { rank, ..*self };
            let Ok(bytes) = std::fs::read(task.marker_path(out)) else {
                continue;
            };
            let Ok(serde_json::Value::Object(then)) = serde_json::from_slice(&bytes) else {
                continue;
            };
            if let Some(what) = first_difference(&then, &now) {
                return Err(OutputError::SettingsChanged {
                    out: out.to_path_buf(),
                    task: task.name(),
                    what,
                });
            }
        }
        Ok(())
    }

    /// Removes what killed processes left half-written beside the run's
    /// output: temporary stats, marker and merged-index files of every task.
    pub fn remove_stale_temps(&self, out: &Path) -> Result<(), prolong_mds::MdsError> {
        let mut names = vec![prolong_mds::INDEX_FILE.to_string()];
        for rank in 0..self.world_size {
            let name = TaskSpec { rank, ..*self }.name();
            names.push(format!("{name}.stats.json"));
            names.push(format!("{name}.done"));
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        prolong_mds::remove_stale_temps(out, &names)
    }

    /// The first entry of `dir` named like a task of another world size
    /// (`procR-M` or `procR-M.done`, M ≠ N): a merged index would pick up
    /// its shards beside this run's.
    pub fn other_world_size_entry(&self, dir: &Path) -> Option<String> {
        let entries = std::fs::read_dir(dir).ok()?;
        let world_size = self.world_size.to_string();
        entries.flatten().find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".done").unwrap_or(&name);
            let (rank, world) = stem.strip_prefix("proc")?.split_once('-')?;
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            (!rank.is_empty() && digits(rank) && digits(world) && world != world_size)
                .then_some(name)
        })
    }

    /// Clears what an earlier attempt of this task left, before it is redone
    /// from scratch: a merged index of an earlier complete run (it would
    /// vouch for shards being rewritten), half-written temporaries beside
    /// `out` and the task's folder `out/procR-N`, which it returns.
    pub fn clear_output(&self, out: &Path) -> Result<PathBuf, prolong_mds::MdsError> {
        remove_file_if_present(&out.join(prolong_mds::INDEX_FILE))?;
        self.remove_stale_temps(out)?;
        let dir = out.join(self.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|err| prolong_mds::MdsError::Io {
                path: dir.clone(),
                err,
            })?;
        }
        Ok(dir)
    }

    /// Once every task of the run is done, writes the merged `out/index.json`
    /// if it is missing. Returns whether the run is complete.
    pub fn merge_if_complete(&self, out: &Path) -> Result<bool, prolong_mds::MdsError> {
        self.merge_if_complete_in(out, &[out.to_path_buf()])
    }

    /// Once every task of the run is done, writes each missing merged
    /// index.json of `dirs` (in order: deepest first, as a merge reads the
    /// indices below it), an empty one where no task wrote anything below,
    /// and removes the temporaries killed writers left beside the run's
    /// files. Every stage finishes through here on every run, also one that
    /// skips its completed task: whatever step a kill interrupted, the next
    /// run completes the output. Returns whether the run is complete.
    pub fn merge_if_complete_in(
        &self,
        out: &Path,
        dirs: &[PathBuf],
    ) -> Result<bool, prolong_mds::MdsError> {
        if !self.all_done(out) {
            return Ok(false);
        }
        self.remove_stale_temps(out)?;
        for dir in dirs {
            if !dir.is_dir() {
                continue;
            }
            prolong_mds::remove_stale_temps(dir, &[prolong_mds::INDEX_FILE])?;
            let index = dir.join(prolong_mds::INDEX_FILE);
            if index.is_file() {
                continue;
            }
            if has_indexed_subdir(dir)? {
                prolong_mds::merge_index(dir)?;
            } else {
                let empty = prolong_mds::Index {
                    shards: Vec::new(),
                    version: 2,
                };
                prolong_mds::write_atomic(&index, empty.to_merged_json().as_bytes())?;
            }
        }
        Ok(true)
    }

    /// The stats a completed task wrote.
    pub fn read_stats<S: for<'de> Deserialize<'de>>(&self, out: &Path) -> Option<S> {
        let bytes = std::fs::read(self.stats_path(out)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Removes `path` if it exists: a merged index or report of an earlier
/// complete run, which would vouch for outputs being rewritten.
pub fn remove_file_if_present(path: &Path) -> Result<(), prolong_mds::MdsError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(prolong_mds::MdsError::Io {
            path: path.to_path_buf(),
            err,
        }),
        _ => Ok(()),
    }
}

fn has_indexed_subdir(dir: &Path) -> Result<bool, prolong_mds::MdsError> {
    let io = |err| prolong_mds::MdsError::Io {
        path: dir.to_path_buf(),
        err,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir()
            && (path.join(prolong_mds::INDEX_FILE).is_file() || has_indexed_subdir(&path)?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `settings` as the JSON object a marker records.
fn settings_value(settings: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(settings).expect("settings are plain data")
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

/// Documents by length in power-of-two buckets [2^k, 2^(k+1)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthHistogram {
    pub buckets: Vec<LengthBucket>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthBucket {
    /// Lengths in [min, max].
    pub min: u64,
    pub max: u64,
    pub documents: u64,
    pub tokens: u64,
}

impl LengthHistogram {
    pub fn add(&mut self, length: u64) {
        let (min, max) = match length {
            0 => (0, 0),
            n => {
                let k = 63 - n.leading_zeros();
                (1u64 << k, (1u64 << k).saturating_mul(2) - 1)
            }
        };
        let at = self.buckets.partition_point(|b| b.min < min);
        if self.buckets.get(at).is_none_or(|b| b.min != min) {
            self.buckets.insert(
                at,
                LengthBucket {
                    min,
                    max,
                    ..Default::default()
                },
            );
        }
        self.buckets[at].documents += 1;
        self.buckets[at].tokens += length;
    }

    pub fn merge(&mut self, other: &LengthHistogram) {
        for b in &other.buckets {
            let at = self.buckets.partition_point(|x| x.min < b.min);
            if self.buckets.get(at).is_none_or(|x| x.min != b.min) {
                self.buckets.insert(
                    at,
                    LengthBucket {
                        documents: 0,
                        tokens: 0,
                        ..b.clone()
                    },
                );
            }
            self.buckets[at].documents += b.documents;
            self.buckets[at].tokens += b.tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_take_every_nth_input_and_name_like_prolong() {
        let inputs: Vec<u32> = (0..10).collect();
        let t = TaskSpec::new(2, 4).unwrap();
        assert_eq!(t.take(&inputs).copied().collect::<Vec<_>>(), vec![2, 6]);
        assert_eq!(t.name(), "proc2-4");
        assert_eq!(TaskSpec::new(7, 64).unwrap().name(), "proc07-64");
        assert!(TaskSpec::new(4, 4).is_err());
        assert!(TaskSpec::new(0, 0).is_err());
    }

    #[test]
    fn outputs_overlapping_an_input_are_refused_through_links_and_dots() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("tok");
        std::fs::create_dir_all(input.join("a")).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let relation = |out: &Path| match check_apart(out, std::slice::from_ref(&input)) {
            Err(OutputError::Overlaps { relation, .. }) => relation,
            Err(e) => panic!("{e}"),
            Ok(()) => "apart",
        };
        assert_eq!(relation(&input), "is");
        assert_eq!(relation(&link), "is");
        assert_eq!(relation(&tmp.path().join("tok/a/../")), "is");
        assert_eq!(relation(&link.join("new/deeper")), "is inside");
        assert_eq!(relation(tmp.path()), "holds");
        // A sibling sharing the name's prefix, and a new folder beside it.
        assert_eq!(relation(&tmp.path().join("tok2")), "apart");
        assert_eq!(relation(&tmp.path().join("out/x")), "apart");
    }

    #[test]
    fn markers_record_settings_and_a_change_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let t = TaskSpec::new(1, 2).unwrap();
        let settings = serde_json::json!({"domain": "web", "share": 0.1 + 0.2, "n": 3});
        t.complete(out, &serde_json::json!({}), &settings).unwrap();
        // Rank 0 (not done) checks rank 1's marker too.
        let t0 = TaskSpec::new(0, 2).unwrap();
        t0.check_output(out, &[], &settings).unwrap();
        let other = serde_json::json!({"domain": "book", "share": 0.1 + 0.2, "n": 3});
        let err = t0.check_output(out, &[], &other).unwrap_err().to_string();
        assert!(
            err.contains("proc1-2 was made with other settings"),
            "{err}"
        );
        assert!(err.contains("domain was \"web\", now \"book\""), "{err}");
        let fewer = serde_json::json!({"domain": "web", "share": 0.1 + 0.2});
        let err = t0.check_output(out, &[], &fewer).unwrap_err().to_string();
        assert!(err.contains("n was 3, now unset"), "{err}");
        // A marker of an older version, without settings, is not compared.
        std::fs::write(t.marker_path(out), b"").unwrap();
        t0.check_output(out, &[], &other).unwrap();
    }

    #[test]
    fn histogram_buckets_by_powers_of_two() {
        let mut h = LengthHistogram::default();
        for n in [1, 2, 3, 4, 1000, 1023, 1024, 0] {
            h.add(n);
        }
        let got: Vec<(u64, u64, u64)> = h
            .buckets
            .iter()
            .map(|b| (b.min, b.max, b.documents))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 1),
                (1, 1, 1),
                (2, 3, 2),
                (4, 7, 1),
                (512, 1023, 2),
                (1024, 2047, 1)
            ]
        );
        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.buckets.iter().map(|b| b.documents).sum::<u64>(), 16);
    }
}
