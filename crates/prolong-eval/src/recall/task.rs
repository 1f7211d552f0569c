//! The four Recall tasks: names (HELMET's and RULER's), generation budgets
//! (HELMET's configs/recall.yaml) and the words their prompts use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One Recall task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Task {
    /// JSON KV retrieval: UUID → UUID records, one asked for.
    #[serde(rename = "json_kv")]
    JsonKv,
    /// RULER: a word key → number needle among distractor needles.
    #[serde(rename = "niah_multikey_2")]
    NiahMultikey2,
    /// RULER: a UUID → UUID needle among distractor needles.
    #[serde(rename = "niah_multikey_3")]
    NiahMultikey3,
    /// RULER: four number needles of one word key in prose.
    #[serde(rename = "niah_multivalue")]
    NiahMultivalue,
}

impl Task {
    /// Every task, in HELMET's order of the Recall table.
    pub const ALL: [Task; 4] = [
        Task::JsonKv,
        Task::NiahMultikey2,
        Task::NiahMultikey3,
        Task::NiahMultivalue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::JsonKv => "json_kv",
            Task::NiahMultikey2 => "niah_multikey_2",
            Task::NiahMultikey3 => "niah_multikey_3",
            Task::NiahMultivalue => "niah_multivalue",
        }
    }

    /// Tokens generated per instance (HELMET: 100 for JSON KV and mk_3, 50 for mk_2 and mv).
    pub fn max_new_tokens(self) -> usize {
        match self {
            Task::JsonKv | Task::NiahMultikey3 => 100,
            Task::NiahMultikey2 | Task::NiahMultivalue => 50,
        }
    }

    /// A number that stays with the task whatever else is asked for (it seeds the
    /// task's instances, so an instance does not depend on the other tasks chosen).
    pub fn stable_id(self) -> u64 {
        match self {
            Task::JsonKv => 1,
            Task::NiahMultikey2 => 2,
            Task::NiahMultikey3 => 3,
            Task::NiahMultivalue => 4,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of the tasks.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown recall task {0:?} (expected json_kv, niah_multikey_2, niah_multikey_3 or niah_multivalue)"
)]
pub struct UnknownTask(pub String);

impl FromStr for Task {
    type Err = UnknownTask;

    fn from_str(s: &str) -> Result<Task, UnknownTask> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTask(s.to_owned()))
    }
}
