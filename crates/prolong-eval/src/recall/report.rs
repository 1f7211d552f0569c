//! Results: per-instance scores, the task × length table (rows the tasks and their
//! unweighted mean "Recall", columns the lengths, scores in percent), recall.json
//! and the heat-map SVG.

use std::fmt::Write as _;

use prolong_plot::recall::{Row, heat_map};
use serde::{Deserialize, Serialize};

use super::task::Task;

/// One instance's generation and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub task: Task,
    pub length: usize,
    pub sample: usize,
    pub answers: Vec<String>,
    pub depths: Vec<f64>,
    pub prompt_tokens: usize,
    /// The decoded generation (special tokens left out).
    pub prediction: String,
    pub generated_tokens: usize,
    /// 0..=1.
    pub score: f64,
}

/// Mean scores in percent: `cells[t][l]` for `tasks[t]` at `lengths[l]`, `recall[l]`
/// the unweighted mean over the tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub tasks: Vec<Task>,
    pub lengths: Vec<usize>,
    pub cells: Vec<Vec<f64>>,
    pub recall: Vec<f64>,
}

/// The row label of the mean.
pub const RECALL_ROW: &str = "Recall";

impl Table {
    /// The table of `scored` over `tasks` × `lengths`; a cell without instances is NaN
    /// (and so is the mean of its column).
    pub fn new(tasks: &[Task], lengths: &[usize], scored: &[Scored]) -> Table {
        let cells: Vec<Vec<f64>> = tasks
            .iter()
            .map(|&t| {
                lengths
                    .iter()
                    .map(|&l| {
                        mean(
                            scored
                                .iter()
                                .filter(|s| s.task == t && s.length == l)
                                .map(|s| s.score),
                        ) * 100.0
                    })
                    .collect()
            })
            .collect();
        let recall = (0..lengths.len())
            .map(|l| mean(cells.iter().map(|row| row[l])))
            .collect();
        Table {
            tasks: tasks.to_vec(),
            lengths: lengths.to_vec(),
            cells,
            recall,
        }
    }

    /// Rows (label, scores): the tasks, then the Recall mean.
    pub fn rows(&self) -> Vec<(String, &[f64])> {
        let mut rows: Vec<(String, &[f64])> = self
            .tasks
            .iter()
            .zip(&self.cells)
            .map(|(t, c)| (t.name().to_owned(), c.as_slice()))
            .collect();
        rows.push((RECALL_ROW.to_owned(), self.recall.as_slice()));
        rows
    }

    /// The table as aligned text, one decimal.
    pub fn to_text(&self) -> String {
        let width = self.rows().iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut s = format!("{:width$}", "task");
        for &l in &self.lengths {
            let _ = write!(s, " {:>8}", length_label(l));
        }
        s.push('\n');
        for (label, scores) in self.rows() {
            let _ = write!(s, "{label:width$}");
            for v in scores {
                let _ = write!(s, " {v:>8.1}");
            }
            s.push('\n');
        }
        s
    }

    /// A heat map ([`prolong_plot::recall::heat_map`]): a cell per (row, length),
    /// coloured by score (0 red, 50 yellow, 100 green), its value printed in it; the
    /// Recall row bold.
    pub fn svg(&self, title: &str) -> String {
        let rows = self.rows();
        let rows: Vec<Row> = rows
            .iter()
            .map(|(label, scores)| Row {
                label,
                scores,
                bold: label == RECALL_ROW,
            })
            .collect();
        let columns: Vec<String> = self.lengths.iter().map(|&l| length_label(l)).collect();
        heat_map(title, &columns, &rows)
    }
}

/// recall.json: the table and every instance's generation and score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallReport {
    pub model: String,
    /// `fill`, `helmet` or `helmet-data DIR` (how the instances were made).
    #[serde(default)]
    pub protocol: String,
    /// niah_multivalue's wording: `head` or `paper`.
    #[serde(default)]
    pub mv_template: String,
    pub seed: u64,
    pub samples: usize,
    pub table: Table,
    pub instances: Vec<Scored>,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// "8K" for multiples of 1024, the number otherwise.
pub fn length_label(length: usize) -> String {
    if length >= 1024 && length.is_multiple_of(1024) {
        format!("{}K", length / 1024)
    } else {
        length.to_string()
    }
}
