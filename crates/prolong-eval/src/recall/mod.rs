//! HELMET's Recall category (docs/eval-recall.md): JSON KV retrieval and RULER's
//! niah_multikey_2, niah_multikey_3 and niah_multivalue, generated from a seed, sized
//! with the evaluated model's tokenizer, checked, and scored as HELMET scores them.
//!
//! * [`task`] — the four tasks, their prompts' wording and generation budgets;
//! * [`values`] — 7-digit numbers, adjective-noun keys and UUIDs, never repeated in a sample;
//! * [`prose`] — sentences of a public-domain text (the multi-value haystack);
//! * [`fit`] — haystack sizing: as many units as fit the length, counted exactly;
//! * [`ruler`], [`json_kv`] — one instance of a task;
//! * [`generate`](mod@generate) — every instance of tasks × lengths × samples, in parallel;
//! * [`helmet`] — HELMET's protocol: its sizes, prompt text, truncation and files;
//! * [`instance`] — an instance as a JSONL record (schemas/recall-instance.schema.json);
//! * [`checks`] — what every instance must satisfy (answers once, budget and fill);
//! * [`score`](mod@score) — RULER's and JSON KV's scorers;
//! * [`report`] — the task × length table, recall.json and the heat-map SVG.

pub mod checks;
pub mod fit;
pub mod generate;
pub mod helmet;
pub mod instance;
pub mod json_kv;
pub mod prose;
pub mod report;
pub mod ruler;
pub mod score;
pub mod task;
pub mod values;

pub use checks::{CheckError, check_instance};
pub use generate::{GenerateError, Plan, generate, generate_all};
pub use instance::Instance;
pub use prose::Prose;
pub use report::{RecallReport, Scored, Table};
pub use score::score;
pub use task::Task;
