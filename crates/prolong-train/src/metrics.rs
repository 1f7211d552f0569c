//! Training metrics: one record per optimizer step (`metrics.jsonl`), interleaved with
//! one record per held-out evaluation, the loss-curve SVG and the FLOP count behind the
//! MFU estimate.

use std::fmt::Write as _;
use std::ops::Range;

use prolong_mds::svg;
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;

/// One optimizer step, as a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based optimizer step.
    pub step: u64,
    /// Mean over the step's micro-batches of each micro-batch's token-mean loss.
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens trained on so far (all positions of every packed sequence).
    pub tokens: u64,
    /// Throughput of this step.
    pub tokens_per_s: f64,
}

/// One held-out evaluation, as a line of `metrics.jsonl` after the step record of its
/// step (step 0: before the first step). Told apart from a [`StepRecord`] by its
/// `eval_loss` key (a step record has `loss`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Optimizer steps done when it was measured.
    pub step: u64,
    /// Token-mean cross-entropy over every label token of the held-out sequences.
    pub eval_loss: f64,
    /// Label tokens it averages over.
    pub eval_tokens: u64,
}

/// The text of `metrics.jsonl`: each step's record, each evaluation after the step
/// records up to its step.
pub fn jsonl(steps: &[StepRecord], evals: &[EvalRecord]) -> String {
    let mut out = String::new();
    let mut line = |json: serde_json::Result<String>| {
        out.push_str(&json.unwrap_or_default());
        out.push('\n');
    };
    let mut evals = evals.iter().peekable();
    for r in steps {
        while let Some(e) = evals.next_if(|e| e.step < r.step) {
            line(serde_json::to_string(e));
        }
        line(serde_json::to_string(r));
    }
    for e in evals {
        line(serde_json::to_string(e));
    }
    out
}

/// Model FLOPs of one training pass (forward + backward, no recomputation: MFU, not HFU)
/// over a packed sequence with these documents: `6·N` per token, `N` the parameters of
/// the matmuls (layers and output projection; the embedding lookup is free), plus the
/// attention scores and values, `6·2·q_dim·Σ len²/2 · layers` for causal attention
/// within each document.
pub fn train_flops(cfg: &LlamaConfig, segments: &[Range<usize>]) -> f64 {
    let c = cfg.hidden_size as f64;
    let (q, kv) = (cfg.q_dim() as f64, cfg.kv_dim() as f64);
    let f = cfg.intermediate_size as f64;
    let per_layer = c * q + 2.0 * c * kv + q * c + 3.0 * c * f;
    let n = per_layer * cfg.num_hidden_layers as f64 + cfg.vocab_size as f64 * c;
    let tokens: usize = segments.iter().map(|s| s.len()).sum();
    let sq: f64 = segments
        .iter()
        .map(|s| (s.len() as f64).powi(2) / 2.0)
        .sum();
    6.0 * n * tokens as f64 + 6.0 * 2.0 * q * sq * cfg.num_hidden_layers as f64
}

/// Writes a self-contained SVG line chart of the training loss per step and, when there
/// are evaluations, the held-out loss (dots joined by a dashed line, with a legend).
pub fn loss_svg(records: &[StepRecord], evals: &[EvalRecord], title: &str) -> String {
    let (w, h) = (720.0f64, 400.0f64);
    let frame = svg::Frame {
        left: 64.0,
        top: 36.0,
        width: w - 64.0 - 20.0,
        height: h - 36.0 - 44.0,
    };
    let train: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.loss.is_finite())
        .map(|r| (r.step as f64, r.loss))
        .collect();
    let held: Vec<(f64, f64)> = evals
        .iter()
        .filter(|e| e.eval_loss.is_finite())
        .map(|e| (e.step as f64, e.eval_loss))
        .collect();
    let mut s = svg::begin(w, h, w / 2.0, title);
    let all: Vec<(f64, f64)> = train.iter().chain(&held).copied().collect();
    if all.is_empty() {
        return svg::end(s);
    }
    let first = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let last = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = (first.min(1.0), last.max(first + 1.0));
    let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y_range = svg::padded(lo, hi);
    let sx = |x: f64| frame.left + (x - x0) / (x1 - x0) * frame.width;
    let sy = |y: f64| frame.y(y, y_range);
    frame.outline_and_grid(&mut s, y_range);
    for i in 0..=4 {
        let xv = (x0 + (x1 - x0) * i as f64 / 4.0).round();
        frame.x_tick(&mut s, sx(xv), &format!("{xv:.0}"));
    }
    frame.axis_titles(&mut s, "optimizer step", h - 8.0, "loss");
    let scaled = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().map(|&(x, y)| (sx(x), sy(y))).collect()
    };
    const TRAIN: &str = "#1f77b4";
    const HELD: &str = "#ff7f0e";
    svg::polyline(&mut s, TRAIN, "", &scaled(&train));
    if !held.is_empty() {
        let held = scaled(&held);
        svg::polyline(&mut s, HELD, r#" stroke-dasharray="5,3""#, &held);
        for &(x, y) in &held {
            svg::dot(&mut s, x, y, HELD);
        }
        let (lx, ly) = (frame.left + frame.width - 150.0, frame.top + 16.0);
        for (i, (color, label)) in [(TRAIN, "training loss"), (HELD, "held-out loss")]
            .iter()
            .enumerate()
        {
            let y = ly + 16.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{label}</text>"#,
                lx + 20.0,
                lx + 26.0,
                y + 4.0
            );
        }
    }
    svg::end(s)
}

/// Human-readable count: 1.2K, 3.4M, 5.6B.
pub fn human(n: f64) -> String {
    let a = n.abs();
    if a >= 1e12 {
        format!("{:.2}T", n / 1e12)
    } else if a >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}
