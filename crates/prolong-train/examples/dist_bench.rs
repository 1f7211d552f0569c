//! Data parallelism on CPU ranks: scaling, communication share, and the memory plan
//! against measured peaks (`make bench`; needs Open MPI and the release binary built
//! with `--features mpi`, which scripts/bench.sh does).
//!
//! ```text
//! cargo run --release -p prolong-train --example dist_bench -- [--exe target/release/prolong-train]
//! ```
//!
//! 1. Scaling, 1 → 2 ranks with the same work per rank: one recipe (≈ 20M parameters,
//!    512-token sequences, 1 matmul thread per rank), 4 sequences a step on one rank and
//!    8 on two (the global batch doubled); prints tokens/s of each and their ratio (2.0
//!    is perfect scaling; on a machine with fewer free cores than ranks it cannot be).
//! 2. Communication share: the time rank 0 spent inside collectives over the steps'
//!    time, as the trainer's summary reports it, per shard mode on 2 ranks.
//! 3. `plan --device cpu` against every rank's measured peak resident memory less its
//!    footprint before the model existed, for 1, 2 and 4 ranks in each shard mode (glibc
//!    with a fixed mmap threshold, so that the resident peak is the live peak).

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../tests/it/train_data.rs"]
mod train_data;

use train_data::{random_samples, recipe_text, write_packed};

const VOCAB: usize = 8192;

/// `n` packed sequences of `len` random tokens, each cut into two documents.
fn write_data(dir: &Path, n: usize, len: usize) {
    write_packed(dir, &random_samples(n, len, VOCAB as u64, 7));
}

/// A ≈ 19.6M-parameter random Llama (4 layers, hidden 512, FFN 1408, vocabulary 8192).
fn recipe(dir: &Path, name: &str, seq_len: usize, seqs: usize, steps: u64, shard: &str) -> PathBuf {
    let model =
        format!("layers = 4\nhidden = 512\nheads = 8\nkv_heads = 4\nffn = 1408\nvocab = {VOCAB}");
    let text = recipe_text(
        name,
        &model,
        &dir.join(format!("data-{seq_len}")),
        &dir.join(name),
        seq_len,
        seq_len * seqs,
        steps,
        0,
        1e-3,
    ) + &format!("\n[parallel]\nshard = \"{shard}\"\n\n[device]\npeak_tflops = 1\n");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("recipe");
    path
}

/// Runs `train` on `n` ranks; its stdout.
fn train(exe: &Path, n: usize, cfg: &Path, fixed_mmap: bool) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(["launch", "--nproc-per-node", &n.to_string(), "--"])
        .args(["train", "--quiet", "--config"])
        .arg(cfg)
        .env_remove("RANK")
        .env_remove("WORLD_SIZE");
    if fixed_mmap {
        cmd.env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536");
    }
    let out = cmd.output().expect("launch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `before` and before `after` on the first line holding both.
fn field(text: &str, before: &str, after: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.split_once(before)?.1;
        rest.split_once(after)?.0.trim().parse().ok()
    })
}

fn main() {
    let mut exe = PathBuf::from("target/release/prolong-train");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--exe") {
        exe = PathBuf::from(&args[i + 1]);
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write_data(&dir.join("data-512"), 64, 512);
    write_data(&dir.join("data-64"), 8, 64);

    // 1. Scaling.
    let steps = 2;
    let one = train(
        &exe,
        1,
        &recipe(dir, "scale-1", 512, 4, steps, "none"),
        false,
    );
    let tokens = (steps as usize * 512) as f64;
    let rate = |out: &str, seqs: f64| -> f64 {
        let s = field(out, "tokens/s over ", " s on").expect("run seconds");
        tokens * seqs / s
    };
    let r1 = rate(&one, 4.0);
    println!("| ranks | sequences/step | tokens/s | vs 1 rank |");
    println!("|---|---|---|---|");
    println!("| 1 | 4 | {r1:.0} | 1.00 |");
    let mut shares = Vec::new();
    for mode in ["none", "grad_op", "full"] {
        let out = train(
            &exe,
            2,
            &recipe(dir, &format!("scale-2-{mode}"), 512, 8, steps, mode),
            false,
        );
        let r2 = rate(&out, 8.0);
        println!("| 2 ({mode}) | 8 | {r2:.0} | {:.2} |", r2 / r1);
        shares.push((mode, field(&out, "communication: ", "% of step time")));
    }
    println!("\n| shard (2 ranks) | time inside collectives, rank 0 |");
    println!("|---|---|");
    for (mode, share) in shares {
        let share = share.map_or("n/a".into(), |s| format!("{s:.1}%"));
        println!("| {mode} | {share} |");
    }

    // 3. Plan vs measured.
    println!("\n| shard | ranks | rank | measured MB | planned MB | measured / planned |");
    println!("|---|---|---|---|---|---|");
    for mode in ["none", "grad_op", "full"] {
        for n in [1usize, 2, 4] {
            let cfg = recipe(dir, &format!("mem-{mode}-{n}"), 64, 4, 2, mode);
            let out = train(&exe, n, &cfg, true);
            let plan = Command::new(&exe)
                .args(["plan", "--device", "cpu", "--json", "--config"])
                .arg(&cfg)
                .args(["--gpus", &n.to_string()])
                .output()
                .expect("plan");
            let plan: serde_json::Value =
                serde_json::from_slice(&plan.stdout).expect("plan --json");
            let total = plan["total_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6;
            let rank0_only = plan["rank0_only_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6;
            for (rank, line) in out.lines().filter(|l| l.contains(" memory: ")).enumerate() {
                let planned = if rank == 0 { total } else { total - rank0_only };
                let m = field(line, "training ", " MB").unwrap_or(f64::NAN);
                println!(
                    "| {mode} | {n} | {rank} | {m:.1} | {planned:.1} | {:.3} |",
                    m / planned
                );
            }
        }
    }
}
