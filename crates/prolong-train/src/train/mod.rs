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
//! Data parallelism (replicated weights, DDP): with N ranks (torchrun's, mpirun's or
//! srun's environment; CPU ranks through the `mpi` feature) every rank reads the same
//! step from the loader and trains micro-batches r, r + N, r + 2N, ... of it, so the
//! global batch and the data order are those of one rank. Each rank sums its
//! micro-batches' weighted losses and gradients; the sums are added over the ranks (f32
//! all-reduce for the gradients, f64 in rank order for the loss and the weights) and
//! divided once, as one rank divides its own sum. Every rank then clips and steps the
//! same gradient, so the replicas stay equal; rank 0 alone writes metrics, checkpoints
//! and the loss chart. The result equals a one-rank run up to the order of the f32
//! gradient sums.

pub mod checkpoint;
pub mod eval;
pub mod init;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::data::{DataError, Mixture, MixtureLoader};
use crate::dist::DistError;
use crate::dist::group::{ProcessGroup, Solo, as_bytes, as_bytes_mut};
use crate::dist::rank::RankInfo;
use crate::metrics::{StepFlops, StepRecord, train_flops, utilisation};
use crate::model::Llama;
use crate::optim::{AdamW, AdamWConfig, CosineSchedule, Gradients};
use crate::packed::PackedSequence;
use crate::stage::{LossNormalisation, StageConfig, StageError};
use checkpoint::TrainerState;
use eval::HeldOut;
use init::InitRng;

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
}

// The wrappers say their cause in their message, so none of them is also a `source()`.
impl From<crate::Error> for TrainError {
    fn from(e: crate::Error) -> Self {
        Self::Model(e)
    }
}

impl From<DataError> for TrainError {
    fn from(e: DataError) -> Self {
        Self::Data(e)
    }
}

impl From<DistError> for TrainError {
    fn from(e: DistError) -> Self {
        Self::Dist(e)
    }
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        Self::Model(e.into())
    }
}

/// How to run a stage.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest complete checkpoint under the output directory.
    pub resume: bool,
    /// Output directory (default: the recipe's `checkpoint.out`).
    pub out: Option<PathBuf>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
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
}

impl TrainSummary {
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

/// The device the stage runs on. CPU today; the ops are written against candle's device
/// abstraction, so a CUDA build only changes this function.
pub fn device() -> Device {
    Device::Cpu
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

/// One optimizer step's forward/backward over its micro-batches: the step's loss and
/// its fp32 gradient, accumulated in order. With [`LossNormalisation::Sequence`] both
/// are the mean over the micro-batches of each one's token-mean; with
/// [`LossNormalisation::Token`] the token mean over every label of the step
/// (`Σ_i n_i·mean_i / Σ_i n_i`, `n_i` the labels of micro-batch `i`).
pub fn accumulate(
    model: &Llama,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
) -> Result<(f64, Gradients), TrainError> {
    accumulate_part(model, seqs, loss_block, norm)?.finish(&Solo)
}

/// One rank's share of a step, not yet divided: the weighted sums of its micro-batches'
/// losses and gradients, and the count the step divides by.
pub struct StepPart {
    loss: f64,
    count: f64,
    grads: Gradients,
}

/// The sums of [`accumulate`] over `seqs` (one rank's micro-batches of a step).
pub fn accumulate_part(
    model: &Llama,
    seqs: &[PackedSequence],
    loss_block: usize,
    norm: LossNormalisation,
) -> Result<StepPart, TrainError> {
    let mut grads = Gradients::default();
    let mut loss = 0.0;
    for seq in seqs {
        let (out, g) = model.loss_and_grads_blocked(seq, loss_block)?;
        let weight = match norm {
            LossNormalisation::Sequence => 1.0,
            LossNormalisation::Token => out.label_tokens as f64,
        };
        loss += weight * out.loss;
        grads.add_scaled(&g, weight)?;
    }
    let count = match norm {
        LossNormalisation::Sequence => seqs.len(),
        LossNormalisation::Token => seqs.iter().map(|s| s.num_labels()).sum(),
    };
    Ok(StepPart {
        loss,
        count: count as f64,
        grads,
    })
}

impl StepPart {
    /// Adds the parts of every rank of `group` and divides: the step's loss and gradient.
    /// On one rank nothing moves and the arithmetic is exactly [`accumulate`]'s.
    pub fn finish(mut self, group: &dyn ProcessGroup) -> Result<(f64, Gradients), TrainError> {
        if group.size() > 1 {
            // Gradient sums in f32, one tensor at a time (every rank holds every
            // tensor: the step's micro-batches are at least the ranks).
            for t in self.grads.tensors.iter_mut() {
                let mut v = t.flatten_all()?.to_vec1::<f32>()?;
                group.all_reduce_sum(&mut v)?;
                *t = Tensor::from_vec(v, t.shape(), t.device())?;
            }
            // Loss and count in f64, added in rank order: the same on every rank.
            let mine = [self.loss, self.count];
            let mut all = vec![0f64; 2 * group.size()];
            group.all_gather(as_bytes(&mine), as_bytes_mut(&mut all))?;
            self.loss = all.chunks(2).map(|p| p[0]).sum();
            self.count = all.chunks(2).map(|p| p[1]).sum();
        }
        let n = self.count.max(1.0);
        self.grads.scale(1.0 / n)?;
        Ok((self.loss / n, self.grads))
    }
}

/// The process group of this run's ranks: one rank without a launcher; MPI ranks
/// (feature `mpi`) under mpirun, srun or `prolong-train launch`.
pub fn process_group() -> Result<Box<dyn ProcessGroup>, TrainError> {
    let ranks = RankInfo::from_env()?;
    if ranks.world_size == 1 {
        return Ok(Box::new(Solo));
    }
    #[cfg(feature = "mpi")]
    {
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
    Err(DistError::Mpi {
        op: "init",
        msg: format!(
            "rank {} of {}: this build has no multi-rank backend (build with --features mpi for CPU ranks)",
            ranks.rank, ranks.world_size
        ),
    }
    .into())
}

/// Runs (or resumes) the stage described by `cfg` (read from `cfg_path`).
pub fn run(
    cfg_path: &Path,
    cfg: &StageConfig,
    opts: &TrainOptions,
) -> Result<TrainSummary, TrainError> {
    cfg.validate(cfg_path)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| cfg.checkpoint.out.clone());
    let name = cfg.name.clone().unwrap_or_else(|| {
        cfg_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stage".into())
    });
    let llama_cfg = cfg.llama_config(cfg_path)?;
    let dtype = compute_dtype(cfg);
    let dev = device();
    let micro = cfg.micro_batches();
    let steps = cfg.train.steps;
    let threads = candle_core::utils::get_num_threads();
    let group = process_group()?;
    let (rank, ranks) = (group.rank(), group.size());
    let root = rank == 0;
    if micro % ranks as u64 != 0 {
        return Err(TrainError::Stage(StageError::Invalid {
            path: cfg_path.into(),
            msg: format!(
                "{micro} micro-batches per step (tokens_per_step / seq_len) do not divide over {ranks} ranks"
            ),
        }));
    }

    // Data first: a mixture that does not fit the recipe (seq_len, empty stream) fails
    // before any model is loaded.
    let mixture = mixture(cfg)?;
    let mut loader = MixtureLoader::new(&mixture, steps * micro, cfg.data.seq_len, cfg.train.seed)?
        .apply_mask(cfg.data.apply_mask);
    // Held-out sequences leave the loader before it hands out (or restores) anything.
    let held_out = cfg
        .eval
        .as_ref()
        .map(|e| HeldOut::new(e, &mixture, &mut loader))
        .transpose()?;

    if root {
        checkpoint::remove_partial(&out)?;
    }
    group.barrier()?;
    let existing = checkpoint::list(&out)?;
    let adam_cfg = AdamWConfig {
        beta1: cfg.train.beta1,
        beta2: cfg.train.beta2,
        eps: cfg.train.eps,
        weight_decay: cfg.train.weight_decay,
    };

    let (mut model, mut opt, mut state, resumed_from) = match existing.last() {
        Some((_, dir)) if opts.resume => {
            let state = checkpoint::load_state(dir)?;
            check_same_recipe(&state.stage, cfg)?;
            if state.threads != threads {
                eprintln!(
                    "warning: the checkpoint was written with {} matmul threads, this run has {threads}; \
                     bit-identity with an uninterrupted run is only checked for equal counts (set train.threads)",
                    state.threads
                );
            }
            let model = Llama::load(dir, dtype, &dev)?;
            let mut opt = AdamW::new(adam_cfg, model.params())?;
            opt.set_decay_norms(cfg.train.decay_norms);
            checkpoint::load_optimizer(dir, &mut opt)?;
            loader.restore(&state.loader)?;
            let from = state.step;
            (model, opt, state, Some(from))
        }
        Some((_, dir)) => {
            return Err(TrainError::OutputInUse {
                out: out.clone(),
                checkpoint: dir.clone(),
            });
        }
        None => {
            let model = initial_model(cfg, &llama_cfg, dtype, &dev)?;
            let mut opt = AdamW::new(adam_cfg, model.params())?;
            opt.set_decay_norms(cfg.train.decay_norms);
            if cfg.model.keep_optimizer {
                let dir = cfg.model.init.as_deref().unwrap_or(Path::new("."));
                checkpoint::load_optimizer(dir, &mut opt)?;
            }
            let state = TrainerState {
                format: 1,
                step: 0,
                total_steps: steps,
                tokens: 0,
                sequences: 0,
                flops: 0.0,
                elapsed_s: 0.0,
                loader: loader.state(),
                rng: InitRng::new(cfg.train.seed),
                threads,
                stage: cfg.clone(),
                metrics: Vec::new(),
                evals: Vec::new(),
            };
            (model, opt, state, None)
        }
    };

    if let Some(h) = &held_out
        && state.step == 0
    {
        state.evals = vec![h.evaluate(&model, 0)?];
    }
    let metrics_path = out.join("metrics.jsonl");
    // Rank 0 writes everything; the others train and hold the same state.
    let mut metrics_file = if root {
        std::fs::create_dir_all(&out).map_err(|source| TrainError::Io {
            path: out.clone(),
            err: source,
        })?;
        // The metrics file is exactly the checkpoint's records: steps after it are redone.
        let text = crate::metrics::jsonl(&state.metrics, &state.evals).map_err(|err| {
            TrainError::Json {
                path: metrics_path.clone(),
                err,
            }
        })?;
        crate::checkpoint::write_atomic(&metrics_path, text.as_bytes())?;
        Some(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&metrics_path)
                .map_err(|source| TrainError::Io {
                    path: metrics_path.clone(),
                    err: source,
                })?,
        )
    } else {
        None
    };

    let schedule = CosineSchedule::new(
        cfg.train.peak_lr,
        cfg.train.warmup,
        steps,
        cfg.train.min_lr_ratio,
    );
    let bar = progress_bar(opts.progress && root, steps, state.step, &name);
    let mut peak = device_peak(cfg, dtype, &dev)?;
    if ranks > 1 {
        // The step's FLOPs are the whole world's: so is the peak they are divided by.
        peak.tflops *= ranks as f64;
        peak.source = format!("{} x {ranks} ranks", peak.source);
    }
    let (mut run_tokens, mut run_flops) = (0u64, StepFlops::default());
    let run_start = Instant::now();
    let mut eval_seconds = 0.0; // kept out of the throughput
    let start_step = state.step;

    while state.step < steps {
        let t0 = Instant::now();
        let mut seqs = Vec::with_capacity(micro as usize);
        let (mut step_tokens, mut step_flops) = (0u64, StepFlops::default());
        // Every rank reads the whole step (the loader's state stays the same on all of
        // them) and trains micro-batches rank, rank + ranks, ...
        for i in 0..micro {
            let s = loader.next_sequence()?.ok_or(TrainError::DataExhausted {
                step: state.step + 1,
            })?;
            let seq = PackedSequence::new(s.input_ids, &s.indices, s.mask.as_deref())?;
            step_flops += train_flops(&llama_cfg, &seq);
            step_tokens += seq.len() as u64;
            if i % ranks as u64 == rank as u64 {
                seqs.push(seq);
            }
        }
        let (loss, mut grads) = accumulate_part(
            &model,
            &seqs,
            cfg.train.loss_block,
            cfg.train.loss_normalisation,
        )?
        .finish(group.as_ref())?;
        drop(seqs);
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                step: state.step + 1,
                loss,
            });
        }
        let grad_norm = grads.clip(cfg.train.clip)?;
        let lr = schedule.lr(state.step);
        opt.update(model.params_mut(), &grads, lr)?;
        drop(grads);

        let dt = t0.elapsed().as_secs_f64();
        state.step += 1;
        state.tokens += step_tokens;
        state.sequences += micro;
        state.elapsed_s += dt;
        state.flops += step_flops.model;
        run_tokens += step_tokens;
        run_flops += step_flops;
        let rec = StepRecord {
            step: state.step,
            loss,
            lr,
            grad_norm,
            tokens: state.tokens,
            tokens_per_s: step_tokens as f64 / dt.max(1e-9),
        };
        let json = |err| TrainError::Json {
            path: metrics_path.clone(),
            err,
        };
        let mut lines = serde_json::to_string(&rec).map_err(json)?;
        state.metrics.push(rec);
        if let Some(h) = held_out.as_ref().filter(|h| h.due(state.step, steps)) {
            let t = Instant::now();
            let e = h.evaluate(&model, state.step)?;
            eval_seconds += t.elapsed().as_secs_f64();
            lines.push('\n');
            lines.push_str(&serde_json::to_string(&e).map_err(json)?);
            state.evals.push(e);
        }
        if let Some(file) = metrics_file.as_mut() {
            writeln!(file, "{lines}").map_err(|source| TrainError::Io {
                path: metrics_path.clone(),
                err: source,
            })?;
            // A kill point per step for kill tests (PROLONG_KILL_AT_WRITE).
            prolong_mds::write_step();
        }
        bar.set_position(state.step);
        let held = state
            .evals
            .last()
            .map(|e| format!("  held-out {:.4}", e.eval_loss))
            .unwrap_or_default();
        bar.set_message(format!(
            "loss {loss:.4}{held}  lr {lr:.2e}  gnorm {grad_norm:.3}  {}/s",
            crate::metrics::human(step_tokens as f64 / dt.max(1e-9))
        ));
        state.loader = loader.state();

        let every = cfg.checkpoint.every;
        let shard = cfg
            .checkpoint
            .max_shard_bytes()
            .unwrap_or(crate::checkpoint::DEFAULT_MAX_SHARD_BYTES);
        if !root {
            // Checkpoints are rank 0's (the replicas are equal).
        } else if state.step == steps {
            checkpoint::save(&out.join("final"), &model, &opt, &state, shard)?;
        } else if every > 0 && state.step % every == 0 {
            checkpoint::save(
                &checkpoint::periodic_dir(&out, state.step),
                &model,
                &opt,
                &state,
                shard,
            )?;
            prune(&out, cfg.checkpoint.keep)?;
        }
    }
    bar.finish_and_clear();

    let title = if state.evals.is_empty() {
        format!("{name}: training loss")
    } else {
        format!("{name}: training and held-out loss")
    };
    if root {
        let svg = crate::metrics::loss_svg(&state.metrics, &state.evals, &title);
        crate::checkpoint::write_atomic(&out.join("loss.svg"), svg.as_bytes())?;
    }
    // No rank leaves before rank 0's final checkpoint is in place.
    group.barrier()?;

    Ok(TrainSummary {
        name,
        out,
        params: model
            .params()
            .named()
            .iter()
            .map(|(_, t)| t.elem_count())
            .sum(),
        steps,
        steps_run: state.step - start_step,
        resumed_from,
        tokens: state.tokens,
        first_loss: state.metrics.first().map(|r| r.loss),
        final_loss: state.metrics.last().map(|r| r.loss),
        eval_sequences: held_out.as_ref().map_or(0, |h| h.samples().len()),
        first_eval_loss: state.evals.first().map(|e| e.eval_loss),
        final_eval_loss: state.evals.last().map(|e| e.eval_loss),
        run_tokens,
        run_flops,
        run_seconds: run_start.elapsed().as_secs_f64() - eval_seconds,
        threads,
        peak,
    })
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
