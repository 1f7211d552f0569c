//! One test item of HELMET's data, its prompt text as HELMET's templates
//! make it, and its haystack size for the report.

use super::MvTemplate;
use crate::recall::ruler;
use crate::recall::task::Task;

/// One test item as HELMET's data.py reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmetItem {
    pub task: Task,
    /// The context (JSON object or haystack with needles).
    pub context: String,
    /// JSON KV: `question` (the key asked for); RULER: `query`.
    pub query: String,
    /// RULER: `type_needle_v` ("number", "uuid", "numbers"); empty for JSON KV.
    pub type_needle_v: String,
    /// JSON KV: `demos`, (key, value) pairs; HELMET shows the first two.
    pub demos: Vec<(String, String)>,
    /// `answer` (JSON KV) or `outputs` (RULER).
    pub answers: Vec<String>,
}

/// JSON KV's demonstrations in the prompt (HELMET's `shots: 2`).
pub const SHOTS: usize = 2;

impl HelmetItem {
    /// Whether the prompt is RULER's plural template: niah_multivalue under HEAD
    /// (its data.py picks it for `niah_mv`).
    fn plural(&self, mv: MvTemplate) -> bool {
        self.task == Task::NiahMultivalue && mv == MvTemplate::Head
    }

    /// HELMET's `prompt_template.format(**item)` with `context` in place of the
    /// item's (the truncated one).
    pub fn render(&self, context: &str, mv: MvTemplate) -> String {
        match self.task {
            Task::JsonKv => {
                // data.py: demos joined by a blank line, a blank line after them
                // whenever shots > 0 (even with no demos in the file).
                let demos: Vec<String> = self
                    .demos
                    .iter()
                    .take(SHOTS)
                    .map(|(k, v)| format!("Key: {k}\nCorresponding value: {v}"))
                    .collect();
                format!(
                    "{context}\n\nExtract the value corresponding to the specified key in the JSON object below.\n\n{}\n\nKey: {}\n{}",
                    demos.join("\n\n"),
                    self.query,
                    self.answer_prefix(mv)
                )
            }
            _ => ruler::helmet_prompt(&self.type_needle_v, self.plural(mv), &self.query, context),
        }
    }

    /// HELMET's system template: the prompt's last line, which HELMET also puts
    /// before the generation when it scores it.
    pub fn answer_prefix(&self, mv: MvTemplate) -> String {
        match self.task {
            Task::JsonKv => "Corresponding value:".to_owned(),
            _ => ruler::answer_prefix(&self.type_needle_v, self.plural(mv), &self.query),
        }
    }
}

/// Haystack units of a HELMET context, for the report: JSON KV records (lines holding
/// `": "`), RULER lines (multi-key) or words (multi-value, RULER's haystack unit).
pub fn units_of(item: &HelmetItem) -> usize {
    match item.task {
        Task::JsonKv => item.context.matches("\": \"").count(),
        Task::NiahMultivalue => item.context.split_whitespace().count(),
        _ => item.context.lines().count(),
    }
}
