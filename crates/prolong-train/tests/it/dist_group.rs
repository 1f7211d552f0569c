//! Ranks as users start them: `prolong-train launch` (torchrun's environment, or
//! mpirun), and the process group's collectives over real MPI ranks (feature
//! `mpi`; `make test` turns it on). MPI runs need Open MPI's `mpirun`: where it
//! is missing, those tests say they skipped.
//!
//! The MPI tests run this very test executable under `mpirun`, selecting the
//! ignored test `mpi_rank_body`: every rank computes what each collective must
//! give from the other ranks' (deterministic) inputs and checks it exactly.

use crate::train_util as util;

use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_prolong-train");

fn launch(args: &[&str]) -> Output {
    // Each mpirun gets its own session folder: two started at once by parallel tests
    // can otherwise fail in orte_init.
    let session = tempfile::tempdir().unwrap();
    Command::new(EXE)
        .arg("launch")
        .args(args)
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .env("TMPDIR", session.path())
        .output()
        .unwrap()
}

fn sorted_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn launch_env_gives_each_rank_torchruns_variables() {
    let out = launch(&["--nproc-per-node", "3", "--backend", "env", "--", "ranks"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        sorted_lines(&out),
        [
            "rank 0 of 3 (local rank 0)",
            "rank 1 of 3 (local rank 1)",
            "rank 2 of 3 (local rank 2)"
        ]
    );
}

/// One rank failing stops the launch with that rank's status.
#[test]
fn launch_env_reports_a_failed_rank() {
    let out = launch(&[
        "--nproc-per-node",
        "2",
        "--backend",
        "env",
        "--",
        "forward",
        "--model",
        "/nonexistent/model",
        "--batch",
        "/nonexistent/batch.safetensors",
        "--out",
        "/nonexistent/out.safetensors",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a rank of 2 failed with exit status 1"),
        "{err}"
    );
}

/// A recipe of a random tiny model on a small packed dataset (4 micro-batches a step).
fn tiny_recipe(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        util::write_packed(&data, &util::random_samples(40, 128, 64, 5));
    }
    let out = dir.join(name);
    util::write(
        &dir.join(format!("{name}.toml")),
        &util::recipe(&data, &out, 128, 4, 6, 0, 64, 3e-3),
    )
}

/// `launch --nproc-per-node n [--backend env] -- train --quiet --config cfg`.
fn launch_train(n: usize, env_backend: bool, cfg: &std::path::Path) -> Output {
    let n = n.to_string();
    let mut args = vec!["--nproc-per-node", &n];
    if env_backend {
        args.extend(["--backend", "env"]);
    }
    args.extend(["--", "train", "--quiet", "--config", cfg.to_str().unwrap()]);
    launch(&args)
}

/// Without a multi-rank backend, N ranks must not each train the same data.
#[cfg(not(feature = "mpi"))]
#[test]
fn train_on_many_ranks_needs_the_mpi_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_recipe(tmp.path(), "a");
    let out = launch_train(2, true, &cfg);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("this build has no multi-rank backend"),
        "{err}"
    );
}

#[test]
fn launch_refuses_to_nest() {
    let out = launch(&["--", "launch", "--", "ranks"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot launch ranks"));
}

/// `mpirun` when Open MPI is installed, else None (and the caller skips, saying so).
fn mpirun_available(test: &str) -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: skipped: no mpirun (install openmpi-bin, as `make test` does)");
    }
    ok
}

#[test]
fn launch_mpi_starts_mpi_ranks() {
    if !mpirun_available("launch_mpi_starts_mpi_ranks") {
        return;
    }
    let out = launch(&["--nproc-per-node", "2", "--", "ranks"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        sorted_lines(&out),
        ["rank 0 of 2 (local rank 0)", "rank 1 of 2 (local rank 1)"]
    );
}

// ---------------------------------------------------------------------------
// The collectives over MPI ranks.
// ---------------------------------------------------------------------------

/// What rank `rank` contributes: multiples of 1/4 below 32, so that every sum
/// over a few ranks is exact in f32 whatever order MPI adds in.
#[cfg(feature = "mpi")]
fn values(rank: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((rank * 31 + i * 7) % 127) as f32 * 0.25)
        .collect()
}

/// Bytes rank `from` sends to rank `to` in the all-to-all: `from + 2 to + 1` of them
/// (uneven on purpose; rank 0 to rank 0 is one byte).
#[cfg(feature = "mpi")]
fn block(from: usize, to: usize) -> Vec<u8> {
    vec![(from * 16 + to) as u8; from + 2 * to + 1]
}

/// One rank's part: run under `mpirun` by the tests below.
#[cfg(feature = "mpi")]
#[test]
#[ignore = "one MPI rank's body: the tests below run it under mpirun"]
fn mpi_rank_body() {
    use prolong_train::dist::group::{MpiGroup, ProcessGroup, as_bytes, as_bytes_mut};

    let g = MpiGroup::init().unwrap();
    let (r, n) = (g.rank(), g.size());
    println!("rank {r} pid {}", std::process::id());
    g.barrier().unwrap();
    if std::env::var("PROLONG_TEST_KILL_RANK").is_ok_and(|k| k == r.to_string()) {
        // Dies between two collectives; the others are already in the next one.
        let _ = Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // SIGKILL has landed before `kill` returns; nothing below runs.
        unreachable!("rank {r} survived SIGKILL");
    }

    // all-reduce, long enough to take MPI's large-message path.
    let len = 100_003;
    let mut v = values(r, len);
    g.all_reduce_sum(&mut v).unwrap();
    let all: Vec<Vec<f32>> = (0..n).map(|q| values(q, len)).collect();
    let sum: Vec<f32> = (0..len).map(|i| all.iter().map(|a| a[i]).sum()).collect();
    assert_eq!(v, sum, "all_reduce_sum");

    // reduce-scatter: rank r gets block r of the sum.
    let per = 1_001;
    let send = values(r, per * n);
    let mut recv = vec![0f32; per];
    g.reduce_scatter_sum(&send, &mut recv).unwrap();
    let full: Vec<f32> = (0..per * n)
        .map(|i| (0..n).map(|q| values(q, per * n)[i]).sum())
        .collect();
    assert_eq!(recv, full[r * per..(r + 1) * per], "reduce_scatter_sum");

    // all-gather of typed values (bf16 bits here) through the byte interface.
    let mine: Vec<u16> = (0..5).map(|i| (r * 100 + i) as u16).collect();
    let mut gathered = vec![0u16; 5 * n];
    g.all_gather(as_bytes(&mine), as_bytes_mut(&mut gathered))
        .unwrap();
    let expect: Vec<u16> = (0..n)
        .flat_map(|q| (0..5).map(move |i| (q * 100 + i) as u16))
        .collect();
    assert_eq!(gathered, expect, "all_gather");

    // all-to-all with uneven blocks.
    let send: Vec<u8> = (0..n).flat_map(|to| block(r, to)).collect();
    let send_counts: Vec<usize> = (0..n).map(|to| block(r, to).len()).collect();
    let recv_counts: Vec<usize> = (0..n).map(|from| block(from, r).len()).collect();
    let mut recv = vec![0u8; recv_counts.iter().sum()];
    g.all_to_all(&send, &send_counts, &mut recv, &recv_counts)
        .unwrap();
    let expect: Vec<u8> = (0..n).flat_map(|from| block(from, r)).collect();
    assert_eq!(recv, expect, "all_to_all");

    // broadcast from the last rank.
    let mut buf = if r == n - 1 {
        b"from the last rank".to_vec()
    } else {
        vec![0u8; 18]
    };
    g.broadcast(&mut buf, n - 1).unwrap();
    assert_eq!(&buf, b"from the last rank", "broadcast");

    // A size mistake is an error on the rank that made it, before anything moves.
    assert!(g.all_gather(b"ab", &mut [0u8; 3]).is_err());

    g.barrier().unwrap();
    println!("rank {r} of {n}: collectives ok");
}

/// `mpirun` with the flags every test needs (more ranks than cores; root in containers).
#[cfg(feature = "mpi")]
fn mpirun() -> Command {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "--bind-to", "none"]);
    if root {
        cmd.arg("--allow-run-as-root");
    }
    cmd
}

/// Runs `mpi_rank_body` on `n` ranks: whether the job succeeded, and its output.
#[cfg(feature = "mpi")]
fn run_ranks(n: usize, kill_rank: Option<usize>) -> (bool, String) {
    let mut cmd = mpirun();
    cmd.args(["-np", &n.to_string()]);
    if let Some(k) = kill_rank {
        cmd.env("PROLONG_TEST_KILL_RANK", k.to_string());
        cmd.args(["-x", "PROLONG_TEST_KILL_RANK"]);
    }
    cmd.arg(std::env::current_exe().unwrap()).args([
        "--ignored",
        "--exact",
        "dist_group::mpi_rank_body",
        "--nocapture",
        "--test-threads=1",
    ]);
    let session = tempfile::tempdir().unwrap();
    cmd.env("TMPDIR", session.path());
    // Open MPI ends the whole job when a rank dies, so waiting needs no time limit.
    let out = cmd.output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let status = out.status;
    (status.success(), text)
}

#[cfg(feature = "mpi")]
#[test]
fn collectives_over_two_and_four_mpi_ranks() {
    if !mpirun_available("collectives_over_two_and_four_mpi_ranks") {
        return;
    }
    for n in [2, 4] {
        let (ok, out) = run_ranks(n, None);
        assert!(ok, "{n} ranks:\n{out}");
        for r in 0..n {
            assert!(
                out.contains(&format!("rank {r} of {n}: collectives ok")),
                "rank {r} of {n}:\n{out}"
            );
        }
    }
}

/// A rank killed with SIGKILL between collectives: the job ends with an error
/// instead of the others waiting for it forever, and no rank is left running.
#[cfg(feature = "mpi")]
#[test]
fn a_killed_rank_ends_the_whole_job() {
    if !mpirun_available("a_killed_rank_ends_the_whole_job") {
        return;
    }
    let (ok, out) = run_ranks(3, Some(1));
    assert!(!ok, "the job succeeded with a dead rank:\n{out}");
    assert!(!out.contains("collectives ok"), "{out}");
    let pids: Vec<u32> = out
        .lines()
        .filter_map(|l| {
            // libtest's "test mpi_rank_body ... " may stand before it on the line.
            let at = l.find("rank ")?;
            l[at..].split_once(" pid ")?.1.trim().parse().ok()
        })
        .collect();
    assert_eq!(pids.len(), 3, "every rank started:\n{out}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "rank process {pid} still running after the job ended"
        );
    }
}

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
            text.contains("46.8 GB  of 72.0 GB usable") && text.contains("-> fits"),
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

/// Each step's (loss, gradient norm), and every final weight by name, of a run.
#[cfg(feature = "mpi")]
type RunResult = (Vec<(f64, f64)>, Vec<(String, Vec<f32>)>);

/// The [`RunResult`] of the run in `out`.
#[cfg(feature = "mpi")]
fn result(out: &std::path::Path) -> RunResult {
    let curve = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
            )
        })
        .collect();
    let weights = candle_core::safetensors::load(
        out.join("final/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut weights: Vec<(String, Vec<f32>)> = weights
        .into_iter()
        .map(|(k, t)| {
            let v = t
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            (k, v)
        })
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    (curve, weights)
}

/// `tiny_recipe` with `[parallel] shard = mode` and a checkpoint every `every` steps.
#[cfg(feature = "mpi")]
fn sharded_recipe(dir: &std::path::Path, name: &str, mode: &str, every: u64) -> std::path::PathBuf {
    let cfg = tiny_recipe(dir, name);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("every = 0", &format!("every = {every}"));
    util::write(&cfg, &format!("{text}\n[parallel]\nshard = \"{mode}\"\n"))
}

/// Both runs' losses and gradient norms within 1e-5 relative, every weight tensor within
/// 1e-5 of its norm.
#[cfg(feature = "mpi")]
fn assert_close(a: &RunResult, b: &RunResult, what: &str) {
    assert_eq!(a.0.len(), b.0.len(), "{what}: steps");
    for (step, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        assert!(
            ((x.0 - y.0) / x.0).abs() < 1e-5,
            "{what}, step {step}: loss {x:?} vs {y:?}"
        );
        assert!(
            ((x.1 - y.1) / x.1).abs() < 1e-5,
            "{what}, step {step}: grad norm {x:?} vs {y:?}"
        );
    }
    assert_eq!(a.1.len(), b.1.len());
    for ((name_a, x), (name_b, y)) in a.1.iter().zip(&b.1) {
        assert_eq!(name_a, name_b);
        let norm: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let diff: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            diff <= 1e-5 * norm,
            "{what}: {name_a} differs by {diff} (norm {norm})"
        );
    }
}

/// Data parallelism in each shard mode: 2 and 4 MPI ranks, each reading and training
/// its share of every step, give one rank's run with the same global batch. Not bit
/// for bit: the ranks' f32 gradient sums are added in another order (`none`: per rank,
/// then all-reduced; `grad_op`: per rank, then reduce-scattered; `full`: each
/// micro-batch reduce-scattered, then accumulated), and the sharded modes' global norm
/// sums squares in f64 per shard where one rank sums rows in f32: ulps per element,
/// which six AdamW steps carry into the weights. So in every mode losses and gradient
/// norms must agree within 1e-5 relative and every weight tensor within 1e-5 of its
/// norm (measured: about 1e-7).
#[cfg(feature = "mpi")]
#[test]
fn data_parallel_ranks_train_as_one_rank() {
    if !mpirun_available("data_parallel_ranks_train_as_one_rank") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let one = tiny_recipe(tmp.path(), "one");
    let o = Command::new(EXE)
        .args(["train", "--quiet", "--config"])
        .arg(&one)
        .env_remove("RANK")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one = result(&tmp.path().join("one"));
    assert_eq!(one.0.len(), 6);
    for mode in ["none", "grad_op", "full"] {
        for n in [2, 4] {
            let name = format!("{mode}{n}");
            let cfg = sharded_recipe(tmp.path(), &name, mode, 0);
            let o = launch_train(n, false, &cfg);
            assert!(o.status.success(), "{mode}, {n} ranks: {o:?}");
            // One summary, from rank 0.
            assert_eq!(
                String::from_utf8_lossy(&o.stdout)
                    .matches("6 steps")
                    .count(),
                1,
                "{o:?}"
            );
            // The sharded modes write their optimizer state as per-rank shards.
            let index = tmp.path().join(&name).join("final/optimizer/index.json");
            if mode == "none" {
                assert!(!index.exists());
            } else {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
                assert_eq!(v["world"], n, "{mode}");
            }
            assert_close(
                &one,
                &result(&tmp.path().join(&name)),
                &format!("{mode}, {n} ranks"),
            );
        }
    }
    // A step that does not divide over the ranks is refused, on every rank.
    let cfg = tiny_recipe(tmp.path(), "ranks3");
    let o = launch_train(3, false, &cfg);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "4 micro-batches per step (tokens_per_step / seq_len) do not divide over 3 data-parallel ranks"
        ),
        "{o:?}"
    );
}

/// Sequences of `len` tokens cut into four documents, `q = len/4`: `[0, a)`, `[a, q)`
/// ending where the second of 4 shards starts (the label of token `q - 1` must not
/// exist), `[q, b)` across the middle (the boundary of 2 and 4 shards: token `len/2 - 1`
/// predicts the next shard's first token) and `[b, len)` across `3q`.
#[cfg(feature = "mpi")]
fn sequences_crossing_shards(n: usize, len: usize, vocab: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = prolong_rng::SplitMix64::new(11);
    let q = len as u32 / 4;
    (0..n)
        .map(|_| {
            let ids: Vec<u32> = (0..len).map(|_| rng.below(vocab) as u32).collect();
            let a = 1 + rng.below(q as u64 - 2) as u32;
            let b = 2 * q + 1 + rng.below(q as u64 - 2) as u32;
            (ids, vec![0, a, a, q, q, b, b, len as u32])
        })
        .collect()
}

/// Ulysses sequence parallelism (`[parallel] sequence`): each sequence split over 2 or
/// 4 ranks (attention over all tokens of a head shard, kv heads one per rank at 2 and
/// replicated at 4: the tiny model has 4 query and 2 kv heads), and 2 data-parallel
/// groups of 2 SP ranks, equal one rank with the same global batch (4 sequences a
/// step, each with documents crossing the shard boundaries). Same tolerance as data
/// parallelism and for the same reason: the math is one rank's, only the order of f32
/// sums changes (the parameter gradients are summed over the shards, and the token
/// shards change the blocking of the embedding and head gradients); nothing is
/// approximated, so an error in the layout (a document split at a shard, a position or
/// label off by one at a boundary) moves the losses by far more than 1e-5. DP × SP =
/// 2 × 2 also runs with sharded state (`full` and `grad_op`), within the same tolerance.
#[cfg(feature = "mpi")]
#[test]
fn sequence_parallel_ranks_train_as_one_rank() {
    if !mpirun_available("sequence_parallel_ranks_train_as_one_rank") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &sequences_crossing_shards(40, 128, 64));
    let recipe_sharded = |name: &str, sp: usize, shard: &str| {
        let text = util::recipe(&data, &tmp.path().join(name), 128, 4, 6, 0, 64, 3e-3);
        util::write(
            &tmp.path().join(format!("{name}.toml")),
            &format!("{text}\n[parallel]\nsequence = {sp}\nshard = \"{shard}\"\n"),
        )
    };
    let recipe = |name: &str, sp: usize| recipe_sharded(name, sp, "none");
    let o = Command::new(EXE)
        .args(["train", "--quiet", "--config"])
        .arg(recipe("one", 1))
        .env_remove("RANK")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one = result(&tmp.path().join("one"));
    assert_eq!(one.0.len(), 6);
    for (ranks, sp) in [(2, 2), (4, 4), (4, 2)] {
        let name = format!("sp{sp}of{ranks}");
        let o = launch_train(ranks, false, &recipe(&name, sp));
        assert!(o.status.success(), "{name}: {o:?}");
        assert_close(&one, &result(&tmp.path().join(&name)), &name);
    }
    // SP composed with sharded state: the SP ranks' gradients are reduce-scattered
    // like any other rank's (`full`: unit by unit, gathered one unit at a time).
    for shard in ["full", "grad_op"] {
        let name = format!("sp2of4{shard}");
        let o = launch_train(4, false, &recipe_sharded(&name, 2, shard));
        assert!(o.status.success(), "{name}: {o:?}");
        assert_close(&one, &result(&tmp.path().join(&name)), &name);
    }
    // An SP group that does not divide the world is refused, on every rank.
    let o = launch_train(2, false, &recipe("sp4of2", 4));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("parallel.sequence = 4 does not divide the 2 ranks"),
        "{o:?}"
    );
}

/// `n` MPI ranks training `cfg` (`--resume` when `resume`), rank `kill.0` with
/// `PROLONG_KILL_AT_WRITE = kill.1` (Open MPI's app contexts: one command line per rank).
#[cfg(feature = "mpi")]
fn mpirun_train(n: usize, cfg: &std::path::Path, resume: bool, kill: (usize, u64)) -> Output {
    let mut cmd = mpirun();
    for r in 0..n {
        if r > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1", "env"]);
        if r == kill.0 {
            cmd.arg(format!("{}={}", prolong_mds::KILL_AT_WRITE_VAR, kill.1));
        }
        cmd.args([EXE, "train", "--quiet", "--config", cfg.to_str().unwrap()]);
        if resume {
            cmd.arg("--resume");
        }
    }
    let session = tempfile::tempdir().unwrap();
    cmd.env("TMPDIR", session.path())
        .env_remove("RANK")
        .env_remove("WORLD_SIZE");
    // Open MPI ends the whole job when a rank dies, so waiting needs no time limit.
    cmd.output().unwrap()
}

/// `launch --nproc-per-node n -- train --quiet --resume --config cfg`.
#[cfg(feature = "mpi")]
fn launch_resume(n: usize, cfg: &std::path::Path) -> Output {
    let n = n.to_string();
    launch(&[
        "--nproc-per-node",
        &n,
        "--",
        "train",
        "--quiet",
        "--resume",
        "--config",
        cfg.to_str().unwrap(),
    ])
}

/// Sharded checkpoints, same world. Rank 1 of 2 is killed with SIGKILL twice, at points
/// chosen by progress (each rank counts one point per micro-batch's backward and three
/// per file it writes): first at its 13th point, inside its shard of the step-4
/// checkpoint (written, not yet renamed), which leaves the step-2 checkpoint the newest;
/// then, in the resumed run, at its 8th point, in the middle of step 5 (after its first
/// micro-batch's backward, past the step-4 checkpoint). Each time the job ends with
/// Open MPI naming the killed rank and no rank left waiting. The resumed run ends with
/// the uninterrupted run's metrics, HF weights and every shard of master weights and
/// moments, byte for byte.
#[cfg(feature = "mpi")]
#[test]
fn sharded_run_killed_mid_step_resumes_bit_identical() {
    if !mpirun_available("sharded_run_killed_mid_step_resumes_bit_identical") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = sharded_recipe(tmp.path(), "a", "full", 2);
    let o = launch_train(2, false, &a);
    assert!(o.status.success(), "{o:?}");
    let b = sharded_recipe(tmp.path(), "b", "full", 2);
    let (a, out) = (tmp.path().join("a"), tmp.path().join("b"));
    let complete = |step: u64| {
        out.join(format!("checkpoints/step-{step:07}/trainer_state.json"))
            .is_file()
    };
    for (resume, at, newest) in [(false, 13, 2), (true, 8, 4)] {
        let o = mpirun_train(2, &b, resume, (1, at));
        assert!(!o.status.success(), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("signal 9"), "no rank named as killed: {err}");
        // Rank 0 could not get past step 4 alone.
        assert_eq!(util::metrics_text(&out).len(), 4);
        assert!(
            complete(newest) && !complete(newest + 2),
            "newest checkpoint {newest}"
        );
        assert!(!out.join("final").exists());
    }
    let b = out;

    let o = launch_resume(2, &tmp.path().join("b.toml"));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(util::metrics_text(&a), util::metrics_text(&b));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("final/optimizer/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["world"], 2);
    // What `prolong-eval export` reads: config.json and the HF weights, consolidated.
    let model = prolong_train::Llama::load(
        b.join("final"),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.params().named().len(), result(&b).1.len());
    for f in [
        "final/model.safetensors",
        "final/optimizer/index.json",
        "final/optimizer/state.json",
        "final/optimizer/shard-00001-of-00002.safetensors",
        "final/optimizer/shard-00002-of-00002.safetensors",
    ] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

/// Resharding: the step-4 checkpoint of a 4-rank `grad_op` run, resumed on 2 ranks,
/// continues the 4-rank run: each new rank reads the overlapping ranges of the old
/// ranks' shard files. Steps 1-4 are the checkpoint's records (equal as text); steps 5
/// and 6 and the final weights equal the uninterrupted 4-rank run within the
/// data-parallel tolerance (same global batch, other order of the f32 sums), and the
/// data position, tokens and sequences are exactly the uninterrupted run's: no sample
/// skipped or repeated. The same across layouts: the sharded checkpoint resumed by one
/// replicated (`none`) rank, and a one-rank replicated checkpoint by 2 `full` ranks.
#[cfg(feature = "mpi")]
#[test]
fn sharded_checkpoint_resumes_on_another_world_size() {
    if !mpirun_available("sharded_checkpoint_resumes_on_another_world_size") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg4 = sharded_recipe(tmp.path(), "four", "grad_op", 2);
    let o = launch_train(4, false, &cfg4);
    assert!(o.status.success(), "{o:?}");
    let four = tmp.path().join("four");
    let step4 = four.join("checkpoints/step-0000004");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(step4.join("optimizer/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["world"], 4);

    // Each resume: `ranks` ranks (0: one process, no launcher) in `mode` continue the
    // step-4 checkpoint of `from` and must end as `from` ended.
    let resume_from = |from: &std::path::Path, name: &str, mode: &str, ranks: usize| {
        let cfg = sharded_recipe(tmp.path(), name, mode, 2);
        let out = tmp.path().join(name);
        std::fs::create_dir_all(out.join("checkpoints")).unwrap();
        let copy = Command::new("cp")
            .arg("-r")
            .arg(from.join("checkpoints/step-0000004"))
            .arg(out.join("checkpoints"))
            .status()
            .unwrap();
        assert!(copy.success());
        let o = if ranks == 0 {
            Command::new(EXE)
                .args(["train", "--resume", "--config"])
                .arg(&cfg)
                .env_remove("RANK")
                .output()
                .unwrap()
        } else {
            launch_resume(ranks, &cfg)
        };
        assert!(o.status.success(), "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("resumed from step 4"),
            "{o:?}"
        );
        assert_eq!(
            util::metrics_text(from)[..4],
            util::metrics_text(&out)[..4],
            "{name}"
        );
        assert_close(&result(from), &result(&out), name);
        let state = |out: &std::path::Path| -> serde_json::Value {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out.join("final/trainer_state.json")).unwrap(),
            )
            .unwrap();
            serde_json::json!([v["tokens"], v["sequences"], v["loader"]])
        };
        assert_eq!(state(from), state(&out), "{name}");
    };
    resume_from(&four, "two", "grad_op", 2);
    // Across layouts: a replicated run reads the sharded checkpoint whole, and a sharded
    // run reads its pieces of a replicated (one-rank) checkpoint.
    resume_from(&four, "replicated", "none", 0);
    let one = sharded_recipe(tmp.path(), "one", "none", 2);
    let o = Command::new(EXE)
        .args(["train", "--quiet", "--config"])
        .arg(&one)
        .env_remove("RANK")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    resume_from(&tmp.path().join("one"), "sharded", "full", 2);
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
/// shard mode: every rank's peak less its footprint before the model existed (both
/// VmHWM, reported by the trainer) within 10% of the plan's per-rank total.
#[cfg(feature = "mpi")]
#[test]
fn plan_matches_the_measured_peak_memory_of_cpu_ranks() {
    if !mpirun_available("plan_matches_the_measured_peak_memory_of_cpu_ranks") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
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
                // `full` gathers one unit at a time; the CPU plan still models the
                // whole model gathered, an upper bound (checked below, not within 10%).
                if mode != "full" {
                    worst = worst.max((ratio - 1.0).abs());
                } else {
                    assert!(ratio <= 1.0, "full above its bound:\n{table}");
                }
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
