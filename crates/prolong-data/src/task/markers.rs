//! A task's own files beside the output: its stats, then its completion
//! marker holding the run's settings, written in that order.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Task;

impl Task<'_> {
    /// `out/procR-N.stats.json`.
    pub fn stats_path(&self) -> PathBuf {
        self.out
            .join(format!("{}{}", self.spec.name(), super::STATS_SUFFIX))
    }

    /// `out/procR-N.done`.
    pub fn marker_path(&self) -> PathBuf {
        self.out.join(format!("{}.done", self.spec.name()))
    }

    pub fn is_done(&self) -> bool {
        self.marker_path().is_file()
    }

    /// Whether every task of this run has its marker.
    pub fn all_done(&self) -> bool {
        self.every().all(|task| task.is_done())
    }

    /// Writes the stats file, then the completion marker holding `settings`
    /// (see [`Task::check_output`]): in that order, so a marker always has
    /// its stats beside it.
    pub fn complete<S: Serialize>(
        &self,
        stats: &S,
        settings: &impl Serialize,
    ) -> Result<(), prolong_mds::MdsError> {
        let json = serde_json::to_vec_pretty(stats).expect("stats are plain data");
        prolong_mds::write_atomic(&self.stats_path(), &json)?;
        let mut marker =
            serde_json::to_vec_pretty(&settings_value(settings)).expect("settings are plain data");
        marker.push(b'\n');
        prolong_mds::write_atomic(&self.marker_path(), &marker)
    }

    /// The stats a completed task wrote.
    pub fn read_stats<S: for<'de> Deserialize<'de>>(&self) -> Option<S> {
        let bytes = std::fs::read(self.stats_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `settings` as the JSON object a marker records.
pub(super) fn settings_value(settings: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(settings).expect("settings are plain data")
}
