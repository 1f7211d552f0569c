//! The training loop of one stage: micro-batch gradient accumulation, clipping, AdamW,
//! the schedule, checkpoints, exact resume, metrics.
//!
//! Loss and gradient of a step (HF Trainer's rule, which ProLong uses): each micro-batch
//! is one packed sequence; its loss is the mean over its label tokens (pre-training: every
//! token but the first of each document; SFT with `[data] apply_mask`: only the tokens
//! with `mask == 1`, which the model's labels already handle). With `[train]
//! loss_normalisation = "sequence"` (the default) the step's loss and gradient are the
//! mean over the `tokens_per_step / seq_len` micro-batches of those per-micro-batch means
//! (HF divides each micro-batch loss by the accumulation steps; a micro-batch without
//! labels counts with loss 0 and zero gradient); with `"token"` (ProLong's SFT
//! `--token_scaled_loss`) they are the mean over every label token of the step.
//!
//! Determinism: the data order, the initial weights, the accumulation order and every
//! reduction are fixed, so on CPU the same recipe and thread count give bit-identical
//! losses and weights, with or without a kill and `--resume` in between.
//!
//! Data parallelism: with N ranks (torchrun's, mpirun's or srun's environment; CPU ranks
//! through the `mpi` feature) rank r reads only micro-batches r, r + N, r + 2N, ... of
//! every step from the loader and passes the others' unread, so the global batch and
//! the data order are those of one rank. Each rank sums its micro-batches' weighted
//! losses and gradients; the sums are added over the ranks and divided once, as one
//! rank divides its own sum (`step`). `[parallel] shard` chooses what is replicated:
//! `none` (DDP) all-reduces the gradients and every rank steps the whole optimizer;
//! `grad_op` and `full` reduce-scatter them and each rank steps its shard of the
//! optimizer state ([`sharded`]). Rank 0 writes metrics and the loss chart; in a
//! sharded run every rank writes its shard of each checkpoint ([`checkpoint`]). The
//! result equals a one-rank run up to the order of the f32 gradient sums.
//!
//! Sequence parallelism (`[parallel] sequence = N`, Ulysses): the world is DP × N; the
//! N consecutive ranks of an SP group read the same micro-batches, each training its
//! token shard of every sequence (`Llama::loss_and_grads_part`), and the DP groups split
//! the step's micro-batches as above. The shards' sums join the same reduction, and
//! only SP rank 0 counts a sequence (and its FLOPs) in the divisor.
//!
//! Device: each rank trains on the device [`device`] selects (`[device] kind` or
//! `--device`; auto: `cuda:LOCAL_RANK` on a `cuda` build with GPUs, else the CPU), and
//! says which on its first line. Weights, activations, gradients and the replicated
//! optimizer live there; what crosses to the host is named where it happens: the
//! process group's buffers (host slices: [`ProcessGroup`]), the sharded optimizer
//! state of `grad_op`/`full` (host f32 shards, [`sharded`]), checkpoints and the
//! logged loss. The ranks' process group follows the device ([`process_group`]).
//!
//! Files: `run` (the stage, step by step), `step` (a step's sums over micro-batches
//! and ranks), [`sharded`] (ZeRO-2/3 state), [`checkpoint`] (trainer checkpoints) and
//! `dcp` (their sharded optimizer files).

pub mod checkpoint;
#[cfg(test)]
mod checkpoint_kill;
mod dcp;
pub mod device;
pub mod eval;
pub mod fsdp;
pub mod init;
mod metrics_file;
mod record;
mod run;
pub mod sharded;
mod step;
mod weights;

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::data::{DataError, Mixture};
use crate::dist::DistError;
use crate::dist::group::{Backend, ProcessGroup, Solo};
use crate::dist::rank::RankInfo;
use crate::metrics::{StepFlops, utilisation};
use crate::model::Llama;
use crate::stage::{StageConfig, StageError};
pub use run::run;
pub use step::{ShardedStep, StepPart, accumulate, accumulate_part, accumulate_sharded};

/// Everything a stage can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("model: {0}")]
    Model(crate::Error),
    #[error("data: {0}")]
    Data(DataError),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Json {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
    /// The recipe names no model: neither `[model] init` nor `[model.random]`.
    #[error("no model to start from")]
    NoModel,
    /// A fresh run would overwrite an earlier run's checkpoint.
    #[error(
        "{out} already holds a checkpoint ({checkpoint}); pass --resume to continue it or --out to start elsewhere"
    )]
    OutputInUse { out: PathBuf, checkpoint: PathBuf },
    #[error("cannot resume: {0}")]
    Resume(String),
    /// The loss stopped being a finite number.
    #[error("step {step}: loss is {loss}")]
    Diverged { step: u64, loss: f64 },
    /// The loader has no sequence left for the step.
    #[error("step {step}: the loader ran out of sequences")]
    DataExhausted { step: u64 },
    #[error("ranks: {0}")]
    Dist(DistError),
    /// A file or folder write (prolong_mds's atomic writer; the message names the path).
    #[error("{0}")]
    Write(prolong_mds::MdsError),
    #[error(transparent)]
    Device(#[from] device::DeviceError),
}

// The wrappers say their cause in their message, so none of them is also a `source()`.
crate::error::from_cause!(TrainError {
    crate::Error => Model,
    DataError => Data,
    prolong_mds::MdsError => Write,
    DistError => Dist,
    candle_core::Error => Model,
    prolong_packed::SequenceError => Model,
});

/// How to run a stage.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint under the output directory.
    pub resume: bool,
    /// Output directory (default: the recipe's `checkpoint.out`).
    pub out: Option<PathBuf>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// The device (`--device`), instead of the recipe's `[device] kind`.
    pub device: Option<crate::stage::DeviceChoice>,
}

/// What a finished stage reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub name: String,
    pub out: PathBuf,
    pub params: usize,
    pub steps: u64,
    /// Steps run by this invocation (fewer than `steps` after a resume).
    pub steps_run: u64,
    pub resumed_from: Option<u64>,
    pub tokens: u64,
    pub first_loss: Option<f64>,
    pub final_loss: Option<f64>,
    /// Held-out sequences and their loss before the first step and after the last
    /// (`[eval]` recipes only).
    pub eval_sequences: usize,
    pub first_eval_loss: Option<f64>,
    pub final_eval_loss: Option<f64>,
    /// Tokens and FLOPs (model and recomputed) of this invocation, and its wall time
    /// (held-out evaluations left out).
    pub run_tokens: u64,
    pub run_flops: StepFlops,
    pub run_seconds: f64,
    pub threads: usize,
    /// Device peak for MFU and HFU (TFLOP/s) and where it came from.
    pub peak: Peak,
    /// Seconds this rank spent inside collectives during this invocation's steps
    /// (transfers and waiting for the other ranks; 0 on one rank).
    pub comm_seconds: f64,
    /// Each rank's peak resident memory, in rank order (empty off Linux).
    pub memory: Vec<RankMemory>,
}

/// One rank's resident memory (`VmHWM`, the kernel's high-water mark of its RSS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankMemory {
    /// Peak before the model existed: the binary, MPI, the loader.
    pub baseline_bytes: u64,
    /// Peak through the last step, before its checkpoint was written.
    pub step_peak_bytes: u64,
    /// Peak over the whole run, checkpoints included (their serialisation is host
    /// memory on a GPU, outside what `plan` budgets).
    pub peak_bytes: u64,
}

impl RankMemory {
    /// What the training state and a step's working set added to the process: what
    /// `prolong-train plan --device cpu` predicts.
    pub fn training_bytes(&self) -> u64 {
        self.step_peak_bytes.saturating_sub(self.baseline_bytes)
    }
}

/// This process's peak resident memory so far (`VmHWM` of /proc/self/status), bytes;
/// None where there is no such file.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl TrainSummary {
    /// The share of the run's step time spent inside collectives.
    pub fn comm_share(&self) -> f64 {
        self.comm_seconds / self.run_seconds.max(1e-9)
    }
    pub fn tokens_per_s(&self) -> f64 {
        self.run_tokens as f64 / self.run_seconds.max(1e-9)
    }
    /// Model FLOPs per second over the peak; `None` above 100% (a wrong peak).
    pub fn mfu(&self) -> Option<f64> {
        utilisation(self.run_flops.model, self.run_seconds, self.peak.tflops)
    }
    /// Executed FLOPs (with recomputation) per second over the peak; `None` above 100%.
    pub fn hfu(&self) -> Option<f64> {
        utilisation(
            self.run_flops.executed(),
            self.run_seconds,
            self.peak.tflops,
        )
    }
}

/// The peak MFU divides by, and how it was obtained (printed beside the MFU).
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    pub tflops: f64,
    pub source: String,
}

/// The device peak of a stage: `[device] peak_tflops`, else `[device] gpu` from the known
/// table, else measured now on `dev` (before training, so that it is not measured on a
/// machine busy with the run's own leftovers).
pub fn device_peak(cfg: &StageConfig, dtype: DType, dev: &Device) -> Result<Peak, TrainError> {
    if let Some(p) = cfg.device.peak_tflops {
        return Ok(Peak {
            tflops: p,
            source: "device.peak_tflops".into(),
        });
    }
    if let Some(g) = &cfg.device.gpu
        && let Some(p) = crate::metrics::known_gpu_peak(g)
    {
        return Ok(Peak {
            tflops: p,
            source: format!("device.gpu = {g:?}, bf16 data-sheet peak"),
        });
    }
    measure_peak(dtype, dev)
}

fn compute_dtype(cfg: &StageConfig) -> DType {
    cfg.model.dtype.candle()
}

/// The mixture of a recipe's `[data]` table.
pub fn mixture(cfg: &StageConfig) -> Result<Mixture, DataError> {
    match (&cfg.data.manifest, &cfg.data.streams) {
        (Some(m), _) => Mixture::from_manifest(m),
        (None, Some(s)) => Mixture::from_args(s),
        (None, None) => Mixture::from_args(&[]),
    }
}

/// The stage's starting model (no optimizer state).
pub fn initial_model(
    cfg: &StageConfig,
    llama: &LlamaConfig,
    dtype: DType,
    dev: &Device,
) -> Result<Llama, TrainError> {
    match (&cfg.model.init, &cfg.model.random) {
        (Some(dir), _) => {
            let m = Llama::load(dir, dtype, dev)?;
            Ok(Llama::new(llama.clone(), m.params().clone())?)
        }
        (None, Some(r)) => Ok(init::random_llama(llama, r.seed, r.init_std, dtype, dev)?),
        (None, None) => Err(TrainError::NoModel),
    }
}

/// The process group of the ranks in `ranks` whose tensors live on `dev`
/// ([`Backend::select`]): one rank alone; NCCL between GPU ranks (feature `cuda`; the
/// unique id goes through a file under `out`, `dist::unique_id`); MPI between CPU
/// ranks (feature `mpi`) under mpirun, srun or `prolong-train launch`.
pub fn process_group(
    ranks: &RankInfo,
    dev: &Device,
    out: &Path,
) -> Result<Box<dyn ProcessGroup>, TrainError> {
    match Backend::select(dev.is_cuda(), ranks.world_size) {
        Backend::Solo => Ok(Box::new(Solo)),
        Backend::Nccl => nccl_group(ranks, dev, out),
        Backend::Mpi => mpi_group(ranks),
    }
}

#[cfg(feature = "cuda")]
fn nccl_group(
    ranks: &RankInfo,
    dev: &Device,
    out: &Path,
) -> Result<Box<dyn ProcessGroup>, TrainError> {
    use crate::dist::unique_id::Rendezvous;
    let Device::Cuda(cuda) = dev else {
        return Err(DistError::Nccl {
            op: "init",
            msg: "NCCL ranks need a CUDA device".into(),
        }
        .into());
    };
    let at = Rendezvous::from_vars(|v| std::env::var(v).ok(), out)?;
    let group = crate::dist::group::NcclGroup::init(cuda, ranks, &at)?;
    Ok(Box::new(group))
}

#[cfg(not(feature = "cuda"))]
fn nccl_group(_: &RankInfo, _: &Device, _: &Path) -> Result<Box<dyn ProcessGroup>, TrainError> {
    // A CUDA device is only ever selected on a `cuda` build (`device::resolve`).
    Err(DistError::Nccl {
        op: "init",
        msg: "this build has no `cuda` feature".into(),
    }
    .into())
}

#[cfg(feature = "mpi")]
fn mpi_group(ranks: &RankInfo) -> Result<Box<dyn ProcessGroup>, TrainError> {
    let group = crate::dist::group::MpiGroup::init()?;
    if (group.rank(), group.size()) != (ranks.rank, ranks.world_size) {
        return Err(DistError::Mpi {
            op: "init",
            msg: format!(
                "MPI says rank {} of {}, the environment rank {} of {} (start the ranks with mpirun, srun or prolong-train launch)",
                group.rank(),
                group.size(),
                ranks.rank,
                ranks.world_size
            ),
        }
        .into());
    }
    Ok(Box::new(group))
}

#[cfg(not(feature = "mpi"))]
fn mpi_group(ranks: &RankInfo) -> Result<Box<dyn ProcessGroup>, TrainError> {
    Err(DistError::Mpi {
        op: "init",
        msg: format!(
            "rank {} of {}: this build has no multi-rank backend for CPU ranks (build with --features mpi)",
            ranks.rank, ranks.world_size
        ),
    }
    .into())
}

/// A resumed run must train the same recipe (the output directory and the device table
/// may differ).
fn check_same_recipe(saved: &StageConfig, now: &StageConfig) -> Result<(), TrainError> {
    let differs = |what: &str| {
        Err(TrainError::Resume(format!(
            "the recipe's [{what}] differs from the checkpoint's; resume with the recipe it was started with"
        )))
    };
    if saved.model != now.model {
        return differs("model");
    }
    if saved.data != now.data {
        return differs("data");
    }
    if saved.train != now.train {
        return differs("train");
    }
    if saved.eval != now.eval {
        return differs("eval");
    }
    Ok(())
}

/// Keeps the newest `keep` periodic checkpoints (0: all).
fn prune(out: &Path, keep: usize) -> Result<(), TrainError> {
    if keep == 0 {
        return Ok(());
    }
    let periodic: Vec<PathBuf> = checkpoint::list(out)?
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("checkpoints")))
        .collect();
    for p in periodic.iter().take(periodic.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(p).map_err(|source| TrainError::Io {
            path: p.clone(),
            err: source,
        })?;
    }
    Ok(())
}

fn progress_bar(show: bool, steps: u64, pos: u64, name: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps  {msg}  ({elapsed} < {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar.set_position(pos);
    bar
}

/// Side of the square matmul whose best time gives a CPU's peak: large enough that the
/// gemm runs at full speed (tiling and threads busy), small enough to time in a second.
const PEAK_MATMUL: usize = 1024;

/// Best of five `n × n × n` matmuls (`n` = 1024) of random values in the compute dtype,
/// after one warm-up, in TFLOP/s: the peak MFU is measured against when the recipe gives
/// none.
pub fn measure_peak(dtype: DType, dev: &Device) -> Result<Peak, TrainError> {
    let n = PEAK_MATMUL;
    let a = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), dev)?.to_dtype(dtype)?;
    let _ = a.matmul(&b)?; // warm up
    dev.synchronize()?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let c = a.matmul(&b)?; // 2·n³ FLOPs
        dev.synchronize()?;
        drop(c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(Peak {
        tflops: 2.0 * (n as f64).powi(3) / best.max(1e-9) / 1e12,
        source: format!(
            "measured before training: best of 5 {n}x{n}x{n} {dtype:?} matmuls on {} thread(s)",
            candle_core::utils::get_num_threads()
        ),
    })
}
