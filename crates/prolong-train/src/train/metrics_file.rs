//! `metrics.jsonl` as the loop writes it: one record per optimizer step, appended, each a
//! kill point for the kill tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::TrainError;
use super::checkpoint::TrainerState;
use super::run::Setup;

/// `metrics.jsonl`, rank 0's alone: rewritten to exactly the checkpoint's records (the
/// steps after it are redone), then appended one step at a time.
pub(super) struct MetricsFile {
    file: Option<(std::fs::File, PathBuf)>,
}

impl MetricsFile {
    pub(super) fn open(s: &Setup, state: &TrainerState) -> Result<Self, TrainError> {
        if !s.root() {
            return Ok(Self { file: None });
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |err| TrainError::Io { path, err }
        };
        std::fs::create_dir_all(&s.out).map_err(io(&s.out))?;
        let path = s.out.join("metrics.jsonl");
        // The metrics file is exactly the checkpoint's records: steps after it are redone.
        let text = crate::metrics::jsonl(&state.metrics, &state.evals).map_err(|err| {
            TrainError::Json {
                path: path.clone(),
                err,
            }
        })?;
        crate::checkpoint::write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Self {
            file: Some((file, path)),
        })
    }

    pub(super) fn append(&mut self, lines: &str) -> Result<(), TrainError> {
        if let Some((file, path)) = self.file.as_mut() {
            writeln!(file, "{lines}").map_err(|err| TrainError::Io {
                path: path.clone(),
                err,
            })?;
            // A kill point per step for kill tests (PROLONG_KILL_AT_WRITE).
            prolong_mds::write_step();
        }
        Ok(())
    }
}
