//! `prolong-train plan`: the shipped recipes on 8 GPUs, and the CPU model against the
//! measured peak memory of MPI ranks.

use super::EXE;
#[cfg(feature = "mpi")]
use super::{mpi_test_dir, util};
use std::process::Command;

/// `plan` on the shipped recipes with Llama-3-8B's shape: stage 1 (64K) and SFT fit
/// 8×80 GB with full sharding; stage 2 (512K) does not until Ulysses SP 8, and the plan
/// says so.
#[test]
fn plan_of_the_shipped_recipes_on_eight_80gb_gpus() {
    let plan = |recipe: &str, extra: &[&str]| {
        let out = Command::new(EXE)
            .current_dir("../..")
            .args([
                "plan",
                "--config",
                recipe,
                "--gpus",
                "8",
                "--gpu-memory",
                "80GB",
            ])
            .args(["--model-config", "pipelines/models/llama-3-8b.json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for recipe in ["pipelines/stage1-64k.toml", "pipelines/sft.toml"] {
        let text = plan(recipe, &[]);
        assert!(
            text.contains("49.4 GB  of 72.0 GB usable") && text.contains("-> fits"),
            "{text}"
        );
    }
    // The recipe's [parallel] is the plan's default: stage 2 ships with SP 8 and fits;
    // without it (--sp 1 overrides) it does not, and the plan names SP 8.
    let stage2 = plan("pipelines/stage2-512k.toml", &["--sp", "1"]);
    assert!(stage2.contains("DOES NOT FIT"), "{stage2}");
    assert!(stage2.contains("would fit with: --sp 8"), "{stage2}");
    let sp8 = plan("pipelines/stage2-512k.toml", &[]);
    assert!(
        sp8.contains("DP 1 x SP 8") && sp8.contains("shard Full") && sp8.contains("-> fits"),
        "{sp8}"
    );
    let json = plan("pipelines/stage1-64k.toml", &["--shard", "none", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["fits"], false);
    assert_eq!(v["suggestions"][0], "--shard full");
}

/// A model whose state dwarfs the process's fixed footprint (≈ 19.6M parameters:
/// 4 layers of hidden 512, FFN 1408, vocabulary 8192), short sequences, two steps of 4
/// micro-batches (the Adam moments are only resident once the first update has written
/// them: fresh zeros are untouched pages), in shard mode `mode`.
#[cfg(feature = "mpi")]
fn memory_recipe(dir: &std::path::Path, name: &str, mode: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        util::write_packed(&data, &util::random_samples(8, 64, 8192, 11));
    }
    let out = dir.join(name);
    let text = util::recipe(&data, &out, 64, 4, 2, 0, 8192, 1e-3)
        .replace("layers = 2", "layers = 4")
        .replace("hidden = 32", "hidden = 512")
        .replace("heads = 4\nkv_heads = 2", "heads = 8\nkv_heads = 4")
        .replace("ffn = 48", "ffn = 1408");
    util::write(
        &dir.join(format!("{name}.toml")),
        &format!("{text}\n[parallel]\nshard = \"{mode}\"\n\n[device]\npeak_tflops = 1\n"),
    )
}

/// `plan --device cpu` against the measured peak RSS of 1, 2 and 4 MPI ranks in each
/// shard mode (`full` with its per-unit terms: one unit gathered at a time): every
/// rank's peak less its footprint before the model existed (both VmHWM, reported by
/// the trainer) within 10% of the plan's per-rank total.
#[cfg(feature = "mpi")]
#[test]
fn plan_matches_the_measured_peak_memory_of_cpu_ranks() {
    let Some(tmp) = mpi_test_dir("plan_matches_the_measured_peak_memory_of_cpu_ranks") else {
        return;
    };
    let mut worst: f64 = 0.0;
    let mut table = String::new();
    // (mode, ranks) -> every rank's measured peak.
    let mut peaks = std::collections::HashMap::new();
    for mode in ["none", "grad_op", "full"] {
        for n in [1usize, 2, 4] {
            let cfg = memory_recipe(tmp.path(), &format!("{mode}-{n}"), mode);
            // A fixed mmap threshold: every buffer of 64 KiB or more is its own mapping,
            // returned to the system when freed, so the resident peak is the peak of
            // live memory (glibc's adaptive threshold would otherwise keep freed
            // gradient-sized blocks resident in its heap, by the order of frees).
            let session = tempfile::tempdir().unwrap();
            let out = Command::new(EXE)
                .args(["launch", "--nproc-per-node", &n.to_string(), "--"])
                .args(["train", "--quiet", "--config"])
                .arg(&cfg)
                .env_remove("RANK")
                .env_remove("WORLD_SIZE")
                .env("TMPDIR", session.path())
                .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let measured: Vec<f64> = stdout
                .lines()
                .filter_map(|l| l.split_once("training ")?.1.strip_suffix(" MB"))
                .map(|mb| mb.parse::<f64>().unwrap() * 1e6)
                .collect();
            assert_eq!(measured.len(), n, "{stdout}");
            let plan = Command::new(EXE)
                .args(["plan", "--device", "cpu", "--json", "--config"])
                .arg(&cfg)
                .args(["--gpus", &n.to_string()])
                .output()
                .unwrap();
            assert!(plan.status.success(), "{plan:?}");
            let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
            let total = plan["total_bytes"].as_f64().unwrap();
            let rank0_only = plan["rank0_only_bytes"].as_f64().unwrap();
            for (rank, m) in measured.iter().enumerate() {
                let predicted = if rank == 0 { total } else { total - rank0_only };
                let ratio = m / predicted;
                table.push_str(&format!(
                    "{mode:>8} {n} ranks, rank {rank}: measured {:.1} MB, planned {:.1} MB, ratio {ratio:.3}\n",
                    m / 1e6,
                    predicted / 1e6
                ));
                worst = worst.max((ratio - 1.0).abs());
            }
            peaks.insert((mode, n), measured);
        }
    }
    eprintln!("{table}");
    assert!(
        worst <= 0.10,
        "plan vs measured off by {worst:.3}:\n{table}"
    );
    // Per-unit gathering: on more ranks every rank holds less, and never more than
    // grad_op (compute weights replicated) on the same ranks.
    let max = |mode: &str, n: usize| peaks[&(mode, n)].iter().cloned().fold(0.0, f64::max);
    assert!(
        max("full", 4) < max("full", 2) && max("full", 2) < max("full", 1),
        "{table}"
    );
    for n in [2, 4] {
        for (f, g) in peaks[&("full", n)].iter().zip(&peaks[&("grad_op", n)]) {
            assert!(f < g, "full {f} vs grad_op {g} on {n} ranks:\n{table}");
        }
    }
}
