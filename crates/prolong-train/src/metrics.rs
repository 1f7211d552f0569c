//! Training metrics: one record per optimizer step (`metrics.jsonl`), interleaved with
//! one record per held-out evaluation, the loss-curve SVG and the FLOP count behind the
//! MFU estimate.

use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use prolong_packed::PackedSequence;

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
pub fn jsonl(steps: &[StepRecord], evals: &[EvalRecord]) -> serde_json::Result<String> {
    let mut out = String::new();
    let mut line = |json: String| {
        out.push_str(&json);
        out.push('\n');
    };
    let mut evals = evals.iter().peekable();
    for r in steps {
        while let Some(e) = evals.next_if(|e| e.step < r.step) {
            line(serde_json::to_string(e)?);
        }
        line(serde_json::to_string(r)?);
    }
    for e in evals {
        line(serde_json::to_string(e)?);
    }
    Ok(out)
}

/// FLOPs of one training pass (forward + backward) over one packed sequence.
///
/// `model` counts what the model's math needs (MFU, as torchtitan and llm.c count it);
/// `recompute` what this implementation runs again on top (HFU = `model + recompute`).
/// Only matmuls count (2 FLOPs per multiply-add); norms, RoPE, SiLU, softmax and the
/// embedding lookup are left out, as usual. Per token and layer the projections cost
/// `2·P` forward and `4·P` backward, `P = C·q + 2·C·kv + q·C + 3·C·F` (q = heads·head_dim,
/// kv = kv heads·head_dim, F the FFN width). Attention runs per document and causally, so
/// it is charged for the `L(L+1)/2` query-key pairs of each document of length `L`:
/// `4·q` per pair forward (scores, values), `8·q` backward. The output projection runs
/// only on labelled positions: `6·C·V` per label. The backward pass recomputes each
/// layer from its input (everything but the down projection: `2·(P − C·F)` per token and
/// the attention forward, `4·q` per pair) and the attention probabilities once more
/// (`2·q` per pair).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepFlops {
    pub model: f64,
    pub recompute: f64,
}

impl StepFlops {
    /// What the hardware executes: model FLOPs plus recomputation.
    pub fn executed(&self) -> f64 {
        self.model + self.recompute
    }
}

impl std::ops::AddAssign for StepFlops {
    fn add_assign(&mut self, o: Self) {
        self.model += o.model;
        self.recompute += o.recompute;
    }
}

/// [`StepFlops`] of one training pass over `seq`.
pub fn train_flops(cfg: &LlamaConfig, seq: &PackedSequence) -> StepFlops {
    let pairs: f64 = seq
        .segments()
        .iter()
        .map(|s| {
            let l = s.len() as f64;
            l * (l + 1.0) / 2.0
        })
        .sum();
    pass_flops(cfg, seq.len() as f64, pairs, seq.num_labels() as f64)
}

/// [`StepFlops`] of one training pass over `tokens` tokens whose documents hold
/// `pairs` causal (query, key) pairs (Σ len·(len+1)/2), `labels` of them labelled (only
/// those go through the output projection). `plan` counts whole steps with it.
pub fn pass_flops(cfg: &LlamaConfig, tokens: f64, pairs: f64, labels: f64) -> StepFlops {
    let c = cfg.hidden_size as f64;
    let (q, kv) = (cfg.q_dim() as f64, cfg.kv_dim() as f64);
    let f = cfg.intermediate_size as f64;
    let layers = cfg.num_hidden_layers as f64;
    let p = c * q + 2.0 * c * kv + q * c + 3.0 * c * f;
    StepFlops {
        model: layers * (6.0 * p * tokens + 12.0 * q * pairs)
            + 6.0 * c * cfg.vocab_size as f64 * labels,
        recompute: layers * (2.0 * (p - c * f) * tokens + 6.0 * q * pairs),
    }
}

/// Peak TFLOP/s of known GPUs in bf16 dense (their data sheets): H100 SXM 989, H200 989,
/// A100 312. Names are matched case-insensitively, `-`/`_`/space ignored.
pub const KNOWN_GPUS: &[(&str, f64)] = &[
    ("h100", 989.0),
    ("h100sxm", 989.0),
    ("h200", 989.0),
    ("a100", 312.0),
];

/// The bf16 peak of a GPU of [`KNOWN_GPUS`] by name.
pub fn known_gpu_peak(name: &str) -> Option<f64> {
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    KNOWN_GPUS.iter().find(|(n, _)| *n == key).map(|&(_, p)| p)
}

/// Model FLOPs (or executed FLOPs) per second as a fraction of `peak_tflops`; `None`
/// when it would exceed 1 — the peak is then wrong, and no figure above 100% is shown.
pub fn utilisation(flops: f64, seconds: f64, peak_tflops: f64) -> Option<f64> {
    let u = flops / seconds.max(1e-9) / (peak_tflops * 1e12);
    (u.is_finite() && u <= 1.0).then_some(u)
}

/// The SVG line chart of the training loss per step and, when there are evaluations,
/// the held-out loss ([`prolong_plot::loss::loss`]).
pub fn loss_svg(records: &[StepRecord], evals: &[EvalRecord], title: &str) -> String {
    let train: Vec<(f64, f64)> = records.iter().map(|r| (r.step as f64, r.loss)).collect();
    let held: Vec<(f64, f64)> = evals.iter().map(|e| (e.step as f64, e.eval_loss)).collect();
    prolong_plot::loss::loss(&train, &held, title)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-layer model with C = 8, 4 heads of 2 (q = 8), 2 kv heads (kv = 4), F = 12,
    /// V = 23, over 10 tokens in documents of 3 and 7 tokens, by hand:
    /// P = 8·8 + 2·8·4 + 8·8 + 3·8·12 = 480 per token and layer; query-key pairs
    /// 3·4/2 + 7·8/2 = 34; labels 2 + 6 = 8.
    /// model = 2·(6·480·10 + 12·8·34) + 6·8·23·8 = 64,128 + 8,832 = 72,960;
    /// recompute = 2·(2·(480 − 96)·10 + 6·8·34) = 18,624.
    #[test]
    fn flop_count_of_a_tiny_model_by_hand() {
        let cfg = LlamaConfig::from_json(
            r#"{"vocab_size": 23, "hidden_size": 8, "intermediate_size": 12,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}"#,
        )
        .unwrap();
        let seq = PackedSequence::new((0..10).collect(), &[[0, 3], [3, 10]], None).unwrap();
        let f = train_flops(&cfg, &seq);
        assert_eq!(f.model, 72_960.0);
        assert_eq!(f.recompute, 18_624.0);
        assert_eq!(f.executed(), 91_584.0);
        // SFT: only the masked-in positions reach the output projection (3 labels here).
        let mask = [0, 0, 1, 0, 0, 0, 0, 1, 1, 0];
        let sft = PackedSequence::new((0..10).collect(), &[[0, 3], [3, 10]], Some(&mask)).unwrap();
        assert_eq!(sft.num_labels(), 3);
        assert_eq!(
            train_flops(&cfg, &sft).model,
            64_128.0 + 6.0 * 8.0 * 23.0 * 3.0
        );
    }

    #[test]
    fn utilisation_never_exceeds_one() {
        assert_eq!(utilisation(5e11, 1.0, 1.0), Some(0.5));
        assert_eq!(utilisation(2e12, 1.0, 1.0), None);
        assert_eq!(known_gpu_peak("H100-SXM"), Some(989.0));
        assert_eq!(known_gpu_peak("h200"), Some(989.0));
        assert_eq!(known_gpu_peak("A100"), Some(312.0));
        assert_eq!(known_gpu_peak("RTX 4090"), None);
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::optim::CosineSchedule;

    /// What a resume does with the records of `metrics.jsonl` (issue: 1 ulp apart after a
    /// kill and resume): they are written as JSON in the checkpoint, parsed back, and
    /// written again. Every f64 must come back bit for bit (serde_json's `float_roundtrip`
    /// parser; its default one is off by an ulp on some 17-digit values such as the lr
    /// 0.0019504032608410242), and the text must be the same.
    #[test]
    fn step_records_survive_json_bit_for_bit() {
        let schedule = CosineSchedule::new(1e-5, 0.1, 5000, 0.1);
        let mut records: Vec<StepRecord> = (0..5000u64)
            .map(|s| StepRecord {
                step: s + 1,
                loss: 11.0 / (1.0 + s as f64).sqrt() + (s as f64).sin() / 7.0,
                lr: schedule.lr(s),
                grad_norm: 1.0 / 3.0 + s as f64 / 997.0,
                tokens: 4096 * (s + 1),
                tokens_per_s: 1e5 / (1.0 + s as f64 / 3.0),
            })
            .collect();
        records[0].lr = 0.0019504032608410242;
        let text = jsonl(&records, &[]).unwrap();
        let back: Vec<StepRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for (a, b) in records.iter().zip(&back) {
            for (x, y) in [
                (a.loss, b.loss),
                (a.lr, b.lr),
                (a.grad_norm, b.grad_norm),
                (a.tokens_per_s, b.tokens_per_s),
            ] {
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "step {}: {x} came back as {y}",
                    a.step
                );
            }
        }
        assert_eq!(jsonl(&back, &[]).unwrap(), text);
    }
}
