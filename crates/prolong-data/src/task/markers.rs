//! A task's own files beside the output: its stats, then its completion
//! marker holding the run's settings, written in that order.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TaskSpec;

impl TaskSpec {
    pub fn stats_path(&self, out: &Path) -> PathBuf {
        out.join(format!("{}{}", self.name(), super::STATS_SUFFIX))
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

    /// The stats a completed task wrote.
    pub fn read_stats<S: for<'de> Deserialize<'de>>(&self, out: &Path) -> Option<S> {
        let bytes = std::fs::read(self.stats_path(out)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `settings` as the JSON object a marker records.
pub(super) fn settings_value(settings: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(settings).expect("settings are plain data")
}
