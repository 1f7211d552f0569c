//! Training throughput on CPU: prolong-train vs PyTorch eager, same model, data, threads.
//!
//! ```text
//! cargo run --release -p prolong-train --example train_bench -- \
//!     [--threads N] [--only tiny-2048,50m-16384] [--steps-2k 3] [--steps-16k 1] [--no-torch]
//!     [--attention]
//! ```
//!
//! One packed sequence per step: forward + backward (layer recompute, blocked
//! cross-entropy) + AdamW, float32. Documents of mixed lengths (log-uniform in
//! `[16, min(T/2, 4096)]` tokens, the last one cut to fill the sequence) and tokens come
//! from a seeded generator and are written to a safetensors file that
//! scripts/bench_train_torch.py reads too, so both train on the very same sequences. The
//! warmup (one step on the first 2,048 tokens of an extra sequence) is not timed.
//! PyTorch runs when `python3 -c "import torch"` works, with `torch.set_num_threads(N)`;
//! ours uses `N` candle/rayon threads. Prints a markdown table of tokens/s, and for ours
//! the split between loss+gradients and the AdamW step.
//!
//! `--attention` only times our per-document attention (forward + backward, the 50M
//! model's heads, the 16K sequence's documents) with causal query tiles of several sizes
//! against one tile per document (the untiled computation), taking turns so that a
//! shared machine's load drifts over all alike; prints their speed ratios (~1 min).
//!
//! Cost: a 16K step of the 50M model is ~5 TFLOP (≈ 2–3 min per framework on 2 cores), so
//! the four configurations take ~12 min on a 2-core machine; `--only tiny-2048,50m-2048`
//! (~2.5 min) is the quick check.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use prolong_train::ops::attention::{self, AttentionInputs, Heads, QUERY_BLOCK};
use prolong_train::optim::{AdamW, AdamWConfig, Gradients};
use prolong_train::train::init::{InitRng, random_llama};
use prolong_train::{LlamaConfig, PackedSequence};

const WARMUP_TOKENS: usize = 2048;

struct Bench {
    name: &'static str,
    config: serde_json::Value,
}

fn models() -> Vec<Bench> {
    let cfg = |layers: usize, c: usize, h: usize, kv: usize, f: usize, v: usize| {
        serde_json::json!({
            "vocab_size": v, "hidden_size": c, "intermediate_size": f,
            "num_hidden_layers": layers, "num_attention_heads": h, "num_key_value_heads": kv,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": false,
            "hidden_act": "silu", "model_type": "llama"
        })
    };
    vec![
        Bench {
            name: "tiny",
            config: cfg(2, 128, 4, 2, 352, 128_256),
        },
        Bench {
            name: "50m",
            config: cfg(8, 512, 8, 4, 1408, 32_000),
        },
    ]
}

/// `count` packed sequences of `t` tokens: `(input_ids, document lengths)`.
fn sequences(t: usize, vocab: usize, count: usize, seed: u64) -> Vec<(Vec<u32>, Vec<usize>)> {
    let mut rng = InitRng::new(seed);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let max_doc = (t / 2).clamp(16, 4096) as f64;
    (0..count)
        .map(|_| {
            let ids: Vec<u32> = (0..t).map(|_| (unit() * vocab as f64) as u32).collect();
            let mut lens = Vec::new();
            let mut left = t;
            while left > 0 {
                let l = (16f64.ln() + unit() * (max_doc.ln() - 16f64.ln())).exp() as usize;
                let l = l.clamp(1, left);
                lens.push(l);
                left -= l;
            }
            (ids, lens)
        })
        .collect()
}

fn packed(ids: &[u32], lens: &[usize]) -> PackedSequence {
    let mut indices = Vec::with_capacity(lens.len());
    let mut a = 0;
    for &l in lens {
        indices.push([a, a + l]);
        a += l;
    }
    PackedSequence::new(ids.to_vec(), &indices, None).unwrap()
}

/// The warmup sequence: the first `WARMUP_TOKENS` tokens of `seq`, documents cut there.
fn warmup(ids: &[u32], lens: &[usize]) -> PackedSequence {
    let w = WARMUP_TOKENS.min(ids.len());
    let (mut cut, mut a) = (Vec::new(), 0);
    for &l in lens {
        if a >= w {
            break;
        }
        cut.push(l.min(w - a));
        a += l;
    }
    packed(&ids[..w], &cut)
}

fn write_data(path: &Path, seqs: &[(Vec<u32>, Vec<usize>)]) {
    let t = seqs[0].0.len();
    let ids: Vec<i64> = seqs
        .iter()
        .flat_map(|(ids, _)| ids.iter().map(|&x| x as i64))
        .collect();
    let counts: Vec<i64> = seqs.iter().map(|(_, l)| l.len() as i64).collect();
    let lens: Vec<i64> = seqs
        .iter()
        .flat_map(|(_, l)| l.iter().map(|&x| x as i64))
        .collect();
    let dev = &Device::Cpu;
    let map = HashMap::from([
        (
            "input_ids".to_string(),
            Tensor::from_vec(ids, (seqs.len(), t), dev).unwrap(),
        ),
        ("doc_counts".to_string(), Tensor::new(counts, dev).unwrap()),
        ("doc_lens".to_string(), Tensor::new(lens, dev).unwrap()),
    ]);
    candle_core::safetensors::save(&map, path).unwrap();
}

/// Tokens/s of ours over `seqs[1..]` after a warmup step on a cut of `seqs[0]`.
fn bench_ours(config: &LlamaConfig, seqs: &[(Vec<u32>, Vec<usize>)]) -> (f64, f64) {
    let mut model = random_llama(config, 0, 0.02, DType::F32, &Device::Cpu).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default(), model.params()).unwrap();
    let mut step = |seq: &PackedSequence| {
        let t0 = Instant::now();
        let (out, g) = model.loss_and_grads(seq).unwrap();
        let mut grads = Gradients::default();
        grads.add(&g).unwrap();
        drop(g);
        let t1 = Instant::now();
        opt.update(model.params_mut(), &grads, 1e-5).unwrap();
        (
            out.loss,
            (t1 - t0).as_secs_f64(),
            t1.elapsed().as_secs_f64(),
        )
    };
    step(&warmup(&seqs[0].0, &seqs[0].1));
    let timed: Vec<PackedSequence> = seqs[1..].iter().map(|(i, l)| packed(i, l)).collect();
    let start = Instant::now();
    let (mut tokens, mut loss, mut t_grad, mut t_opt) = (0, 0.0, 0.0, 0.0);
    for seq in &timed {
        let (l, g, o) = step(seq);
        (loss, t_grad, t_opt) = (l, t_grad + g, t_opt + o);
        tokens += seq.len();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("  ours: {secs:.2} s: loss+grads {t_grad:.2} s, AdamW {t_opt:.2} s");
    (tokens as f64 / secs, loss)
}

fn bench_torch(dir: &Path, data: &Path, config: &serde_json::Value, threads: usize) -> Option<f64> {
    let cfg = dir.join("config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench_train_torch.py");
    let out = Command::new("python3")
        .arg(script)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(&cfg)
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--warmup-tokens")
        .arg(WARMUP_TOKENS.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "bench_train_torch.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{'))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    eprintln!("  torch: {line}");
    v["tok_per_s"].as_f64()
}

/// Seconds of one attention forward + backward on `segments` with `block` query tiles.
fn attention_pass(
    x: &[Tensor; 4],
    heads: &Heads,
    segments: &[std::ops::Range<usize>],
    block: usize,
) -> f64 {
    let [q, k, v, dout] = x;
    let x = AttentionInputs::new(q, k, v, heads, segments);
    let t0 = Instant::now();
    let out = attention::forward_tiled(x, block).unwrap();
    let grads = attention::backward_tiled(dout, x, block).unwrap();
    drop((out, grads));
    t0.elapsed().as_secs_f64()
}

/// Tiled vs untiled attention of the 50M model on the 16K sequence's documents,
/// alternating `rounds` times.
fn bench_attention(rounds: usize) {
    let (t, heads) = (
        16384,
        Heads {
            n_head: 8,
            n_kv_head: 4,
            head_dim: 64,
        },
    );
    let (_, lens) = &sequences(t, 32_000, 2, t as u64)[1];
    let mut segments = Vec::new();
    let mut a = 0;
    for &l in lens {
        segments.push(a..a + l);
        a += l;
    }
    let x = [512, 256, 256, 512].map(|w| Tensor::randn(0f32, 1.0, (t, w), &Device::Cpu).unwrap());
    let blocks = [usize::MAX, 128, QUERY_BLOCK, 512];
    let mut secs = [0.0; 4];
    for _ in 0..rounds {
        for (s, &b) in secs.iter_mut().zip(&blocks) {
            *s += attention_pass(&x, &heads, &segments, b);
        }
    }
    println!(
        "attention fwd+bwd, 50M heads (8q/4kv × 64), {} documents of the 16K sequence (longest {}), {rounds} rounds:",
        lens.len(),
        lens.iter().max().unwrap_or(&0)
    );
    println!("| attention | seconds per pass | speed vs untiled |");
    println!("|---|---:|---:|");
    for (s, &b) in secs.iter().zip(&blocks) {
        let name = match b {
            usize::MAX => "one tile per document (untiled)".to_string(),
            QUERY_BLOCK => format!("causal tiles of {b} queries (the default)"),
            _ => format!("causal tiles of {b} queries"),
        };
        println!(
            "| {name} | {:.2} | {:.2}× |",
            s / rounds as f64,
            secs[0] / s
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let threads: usize = opt("--threads").map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |s| s.parse().expect("--threads N"),
    );
    // SAFETY: set before any other thread exists (candle reads them at its pools' start).
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    }
    if args.iter().any(|a| a == "--attention") {
        bench_attention(3);
        return;
    }
    let steps_2k: usize = opt("--steps-2k").map_or(3, |s| s.parse().unwrap());
    let steps_16k: usize = opt("--steps-16k").map_or(1, |s| s.parse().unwrap());
    let only: Option<Vec<String>> =
        opt("--only").map(|s| s.split(',').map(str::to_string).collect());
    let torch = !args.iter().any(|a| a == "--no-torch")
        && Command::new("python3")
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success());
    let dir = tempfile::tempdir().unwrap();

    let mut rows = Vec::new();
    for m in models() {
        let config = LlamaConfig::from_json(&m.config.to_string()).unwrap();
        for (t, steps) in [(2048, steps_2k), (16384, steps_16k)] {
            let key = format!("{}-{t}", m.name);
            if only.as_ref().is_some_and(|o| !o.contains(&key)) {
                continue;
            }
            let seqs = sequences(t, config.vocab_size, steps + 1, t as u64);
            let data = dir.path().join(format!("{key}.safetensors"));
            write_data(&data, &seqs);
            let docs: usize = seqs[1..].iter().map(|(_, l)| l.len()).sum();
            eprintln!("{key}: {steps} timed steps, {docs} documents, {threads} threads");
            let (ours, loss) = bench_ours(&config, &seqs);
            eprintln!("  ours: {ours:.0} tok/s (last loss {loss:.4})");
            let theirs = if torch {
                bench_torch(dir.path(), &data, &m.config, threads)
            } else {
                None
            };
            rows.push((m.name, t, ours, theirs));
        }
    }
    println!("| model | seq | ours tok/s | torch tok/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    for (name, t, ours, theirs) in rows {
        let (tt, ratio) = match theirs {
            Some(x) => (format!("{x:.0}"), format!("{:.2}×", ours / x)),
            None => ("—".into(), "—".into()),
        };
        println!("| {name} | {t} | {ours:.0} | {tt} | {ratio} |");
    }
    if !torch {
        println!("\n(torch columns empty: python3 cannot import torch, or --no-torch)");
    }
}
