//! What a step leaves behind: its result, the run's totals, the metrics line and the
//! held-out loss recorded into the trainer state, the progress text, and every rank's
//! peak memory for the summary.

use std::time::Instant;

use super::checkpoint::TrainerState;
use super::eval::HeldOut;
use super::run::Setup;
use super::weights::Weights;
use super::{RankMemory, TrainError};
use crate::dist::group::{as_bytes, as_bytes_mut};
use crate::metrics::{StepFlops, StepRecord};

/// What one optimizer step gave.
pub(super) struct StepResult {
    pub(super) loss: f64,
    pub(super) lr: f64,
    pub(super) grad_norm: f64,
    pub(super) tokens: u64,
    pub(super) flops: StepFlops,
}

/// This invocation's tokens, FLOPs and time (held-out evaluations left out).
pub(super) struct RunTotals {
    pub(super) start_step: u64,
    pub(super) tokens: u64,
    pub(super) flops: StepFlops,
    pub(super) start: Instant,
    pub(super) eval_seconds: f64,
    /// Seconds inside collectives during the training steps.
    pub(super) comm_seconds: f64,
    /// Peak resident memory before the model existed, and through the last step
    /// before its checkpoint (None off Linux).
    pub(super) baseline_rss: Option<u64>,
    pub(super) step_rss: Option<u64>,
}

impl RunTotals {
    pub(super) fn new(start_step: u64, baseline_rss: Option<u64>) -> Self {
        Self {
            start_step,
            tokens: 0,
            flops: StepFlops::default(),
            start: Instant::now(),
            eval_seconds: 0.0,
            comm_seconds: 0.0,
            baseline_rss,
            step_rss: None,
        }
    }
}

/// Every rank's peak resident memory before the model existed and over the run, in
/// rank order (gathered so that rank 0's summary reports the world); empty where the
/// system does not report it.
pub(super) fn rank_memory(s: &Setup, totals: &RunTotals) -> Result<Vec<RankMemory>, TrainError> {
    let (Some(baseline), Some(step), Some(peak)) =
        (totals.baseline_rss, totals.step_rss, super::peak_rss())
    else {
        return Ok(Vec::new());
    };
    let mut all = vec![0u64; 3 * s.group.size()];
    s.group
        .all_gather(as_bytes(&[baseline, step, peak]), as_bytes_mut(&mut all))?;
    Ok(all
        .chunks(3)
        .map(|c| RankMemory {
            baseline_bytes: c[0],
            step_peak_bytes: c[1],
            peak_bytes: c[2],
        })
        .collect())
}

/// Counts the step into the state and the totals; its metrics line.
pub(super) fn record(
    s: &Setup,
    state: &mut TrainerState,
    totals: &mut RunTotals,
    step: &StepResult,
    dt: f64,
) -> Result<String, TrainError> {
    state.step += 1;
    state.tokens += step.tokens;
    state.sequences += s.micro;
    state.elapsed_s += dt;
    state.flops += step.flops.model;
    totals.tokens += step.tokens;
    totals.flops += step.flops;
    let rec = StepRecord {
        step: state.step,
        loss: step.loss,
        lr: step.lr,
        grad_norm: step.grad_norm,
        tokens: state.tokens,
        tokens_per_s: step.tokens as f64 / dt.max(1e-9),
    };
    let line = serde_json::to_string(&rec).map_err(|err| metrics_json(s, err))?;
    state.metrics.push(rec);
    Ok(line)
}

/// A metrics record that does not serialise, named by the metrics file.
pub(super) fn metrics_json(s: &Setup, err: serde_json::Error) -> TrainError {
    TrainError::Json {
        path: s.out.join("metrics.jsonl"),
        err,
    }
}

/// The held-out loss when it is due, appended to the step's metrics `lines`.
pub(super) fn evaluate_if_due(
    s: &Setup,
    held_out: &Option<HeldOut>,
    weights: &Weights,
    state: &mut TrainerState,
    totals: &mut RunTotals,
    mut lines: String,
) -> Result<String, TrainError> {
    if let Some(h) = held_out
        .as_ref()
        .filter(|h| h.due(state.step, s.cfg.train.steps))
    {
        let t = Instant::now();
        let e = weights.evaluate(s, h, state.step)?;
        totals.eval_seconds += t.elapsed().as_secs_f64();
        lines.push('\n');
        lines.push_str(&serde_json::to_string(&e).map_err(|err| metrics_json(s, err))?);
        state.evals.push(e);
    }
    Ok(lines)
}

pub(super) fn progress_text(state: &TrainerState, step: &StepResult, dt: f64) -> String {
    let held = state
        .evals
        .last()
        .map(|e| format!("  held-out {:.4}", e.eval_loss))
        .unwrap_or_default();
    format!(
        "loss {:.4}{held}  lr {:.2e}  gnorm {:.3}  {}/s",
        step.loss,
        step.lr,
        step.grad_norm,
        crate::metrics::human(step.tokens as f64 / dt.max(1e-9))
    )
}
