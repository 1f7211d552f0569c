//! [`run`]: one stage from its recipe to its final checkpoint, as a sequence of named
//! steps (set up the ranks, open the data, start or resume, train step by step, record,
//! checkpoint, summarise).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};

use super::checkpoint::{self, TrainerState};
use super::eval::HeldOut;
use super::metrics_file::MetricsFile;
use super::record::{RunTotals, StepResult, evaluate_if_due, progress_text, rank_memory, record};
use super::weights::{Weights, weights_for};
use super::{
    Peak, TrainError, TrainOptions, TrainSummary, check_same_recipe, compute_dtype, device,
    device_peak, initial_model, mixture, process_group, progress_bar, prune,
};
use crate::config::LlamaConfig;
use crate::data::MixtureLoader;
use crate::dist::group::{CommClock, ProcessGroup, Timed};
use crate::dist::rank::RankInfo;
use crate::dist::ulysses::SeqGroup;
use crate::model::Llama;
use crate::optim::CosineSchedule;
use crate::stage::{StageConfig, StageError};
use prolong_packed::PackedSequence;

/// What every step needs to know about the run (fixed once set up).
pub(super) struct Setup<'a> {
    pub cfg: &'a StageConfig,
    pub llama: LlamaConfig,
    pub dtype: DType,
    pub dev: Device,
    pub group: Box<dyn ProcessGroup>,
    /// Seconds `group`'s collectives have taken so far.
    pub comm: CommClock,
    pub out: PathBuf,
    /// Micro-batches (sequences) per optimizer step, over all ranks.
    pub micro: u64,
    /// Ranks per sequence (Ulysses, `[parallel] sequence`); the world is `dp × sp`.
    pub sp: usize,
    /// Data-parallel ranks (the world over `sp`) and this rank's place among them.
    pub dp: usize,
    pub dp_rank: usize,
    pub threads: usize,
}

impl Setup<'_> {
    pub fn root(&self) -> bool {
        self.group.rank() == 0
    }

    /// This rank's sequence-parallel group (the `sp` consecutive ranks that share each
    /// sequence), or None without sequence parallelism.
    pub fn seq_group(&self) -> Result<Option<SeqGroup<'_>>, TrainError> {
        Ok(if self.sp > 1 {
            Some(SeqGroup::new(self.group.as_ref(), self.sp)?)
        } else {
            None
        })
    }
}

/// Runs (or resumes) the stage described by `cfg` (read from `cfg_path`).
pub fn run(
    cfg_path: &Path,
    cfg: &StageConfig,
    opts: &TrainOptions,
) -> Result<TrainSummary, TrainError> {
    let (s, name, device_line) = set_up(cfg_path, cfg, opts)?;
    // Data first: a mixture that does not fit the recipe (seq_len, empty stream) fails
    // before any model is loaded.
    let mixture = mixture(cfg)?;
    let mut loader = MixtureLoader::new(
        &mixture,
        cfg.train.steps * s.micro,
        cfg.data.seq_len,
        cfg.train.seed,
    )?
    .apply_mask(cfg.data.apply_mask);
    // Held-out sequences leave the loader before it hands out (or restores) anything.
    let held_out = cfg
        .eval
        .as_ref()
        .map(|e| HeldOut::new(e, &mixture, &mut loader))
        .transpose()?;
    // The process's own footprint (binary, MPI, loader) before any model exists.
    let baseline = super::peak_rss();
    let (mut weights, mut state, resumed_from) = start_or_resume(&s, opts, &mut loader)?;
    if let Some(h) = &held_out
        && state.step == 0
    {
        state.evals = vec![weights.evaluate(&s, h, 0)?];
    }
    // The run's first line, once recipe, data and model are known good (an error
    // before this point is the only line on stderr).
    eprintln!("{device_line}");
    let mut metrics = MetricsFile::open(&s, &state)?;
    let mut peak = device_peak(cfg, s.dtype, &s.dev)?;
    if let ranks @ 2.. = s.group.size() {
        // The step's FLOPs are the whole world's: so is the peak they are divided by.
        peak.tflops *= ranks as f64;
        peak.source = format!("{} x {ranks} ranks", peak.source);
    }
    let bar = progress_bar(
        opts.progress && s.root(),
        cfg.train.steps,
        state.step,
        &name,
    );
    let mut totals = RunTotals::new(state.step, baseline);
    while state.step < cfg.train.steps {
        let t0 = Instant::now();
        let comm0 = s.comm.seconds();
        let step = train_step(&s, &mut weights, &mut loader, &state)?;
        let dt = t0.elapsed().as_secs_f64();
        totals.comm_seconds += s.comm.seconds() - comm0;
        // Before this step's checkpoint: what the plan models is the step's memory.
        totals.step_rss = super::peak_rss();
        let lines = record(&s, &mut state, &mut totals, &step, dt)?;
        let lines = evaluate_if_due(&s, &held_out, &weights, &mut state, &mut totals, lines)?;
        metrics.append(&lines)?;
        bar.set_position(state.step);
        bar.set_message(progress_text(&state, &step, dt));
        state.loader = loader.state();
        checkpoint_if_due(&s, &mut weights, &state)?;
    }
    bar.finish_and_clear();
    finish(
        s,
        name,
        weights,
        state,
        held_out,
        resumed_from,
        totals,
        peak,
    )
}

/// The run's ranks, device, output folder and name (and the line that names the
/// device). The world is DP × SP: the SP group of
/// `sp` consecutive ranks shares each sequence, the DP groups split the step's
/// sequences, which must divide over them.
fn set_up<'a>(
    cfg_path: &Path,
    cfg: &'a StageConfig,
    opts: &TrainOptions,
) -> Result<(Setup<'a>, String, String), TrainError> {
    cfg.validate(cfg_path)?;
    let name = cfg.name.clone().unwrap_or_else(|| {
        cfg_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "stage".into())
    });
    let comm = CommClock::default();
    // The device first: the process group follows it.
    let ranks = RankInfo::from_env()?;
    let (dev, which) = device::select(opts.device.unwrap_or(cfg.device.kind), ranks.local_rank)?;
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| cfg.checkpoint.out.clone());
    let group = process_group(&ranks, &dev, &out)?;
    let s = Setup {
        cfg,
        llama: cfg.llama_config(cfg_path)?,
        dtype: compute_dtype(cfg),
        dev,
        group: Box::new(Timed::new(group, comm.clone())),
        comm,
        out,
        micro: cfg.micro_batches(),
        sp: cfg.parallel.sequence,
        dp: 1,
        dp_rank: 0,
        threads: candle_core::utils::get_num_threads(),
    };
    let invalid = |msg: String| {
        TrainError::Stage(StageError::Invalid {
            path: cfg_path.into(),
            msg,
        })
    };
    let (rank, ranks) = (s.group.rank(), s.group.size());
    if ranks % s.sp != 0 {
        return Err(invalid(format!(
            "parallel.sequence = {} does not divide the {ranks} ranks",
            s.sp
        )));
    }
    let (dp, dp_rank) = (ranks / s.sp, rank / s.sp);
    if s.micro % dp as u64 != 0 {
        return Err(invalid(format!(
            "{} micro-batches per step (tokens_per_step / seq_len) do not divide over {dp} data-parallel ranks",
            s.micro
        )));
    }
    let which = if ranks > 1 {
        format!("rank {rank} of {ranks}: {which}")
    } else {
        which
    };
    Ok((Setup { dp, dp_rank, ..s }, name, which))
}

/// The newest complete checkpoint's weights, optimizer and trainer state with
/// `--resume`; else the recipe's starting model (refusing to write over a checkpoint).
fn start_or_resume(
    s: &Setup,
    opts: &TrainOptions,
    loader: &mut MixtureLoader,
) -> Result<(Weights, TrainerState, Option<u64>), TrainError> {
    let (cfg, out) = (s.cfg, &s.out);
    if s.root() {
        checkpoint::remove_partial(out)?;
    }
    s.group.barrier()?;
    match checkpoint::list(out)?.last() {
        Some((_, dir)) if opts.resume => {
            let state = checkpoint::load_state(dir)?;
            check_same_recipe(&state.stage, cfg)?;
            if state.threads != s.threads {
                eprintln!(
                    "warning: the checkpoint was written with {} matmul threads, this run has {}; \
                     bit-identity with an uninterrupted run is only checked for equal counts (set train.threads)",
                    state.threads, s.threads
                );
            }
            let mut weights = weights_for(s, Llama::load(dir, s.dtype, &s.dev)?)?;
            checkpoint::load_optimizer_into(dir, &mut weights, s)?;
            loader.restore(&state.loader)?;
            let from = state.step;
            Ok((weights, state, Some(from)))
        }
        Some((_, dir)) => Err(TrainError::OutputInUse {
            out: out.clone(),
            checkpoint: dir.clone(),
        }),
        None => {
            let mut weights = weights_for(s, initial_model(cfg, &s.llama, s.dtype, &s.dev)?)?;
            if cfg.model.keep_optimizer {
                let dir = cfg.model.init.as_deref().unwrap_or(Path::new("."));
                checkpoint::load_optimizer_into(dir, &mut weights, s)?;
            }
            let state = TrainerState::fresh(cfg, loader.state(), s.threads);
            Ok((weights, state, None))
        }
    }
}

/// A random 4-layer tiny model's stage with `[parallel] shard = "full"`, its
/// `[checkpoint]` table last (a test appends to it).
#[cfg(test)]
pub(super) const TINY_FULL_STAGE: &str = "[model.random]\nseed = 1\nlayers = 4\nhidden = 32\nheads = 4\nkv_heads = 2\nffn = 48\nvocab = 64\n\
     [data]\nstreams = [\"d\"]\nseq_len = 16\n\
     [train]\nsteps = 2\ntokens_per_step = 16\npeak_lr = 1e-3\nwarmup = 0.0\nseed = 3\n\
     [parallel]\nshard = \"full\"\n[checkpoint]\nout = \"o\"\n";

/// A one-rank [`Setup`] of `cfg` on the CPU in `dtype`, writing under `out`.
#[cfg(test)]
pub(super) fn solo_setup<'a>(cfg: &'a StageConfig, dtype: DType, out: &Path) -> Setup<'a> {
    Setup {
        cfg,
        llama: cfg.llama_config(Path::new("test.toml")).unwrap(),
        dtype,
        dev: Device::Cpu,
        group: Box::new(crate::dist::group::Solo),
        comm: CommClock::default(),
        out: out.into(),
        micro: 1,
        sp: 1,
        dp: 1,
        dp_rank: 0,
        threads: 1,
    }
}

/// Reads this rank's micro-batches of the next step (the others' are passed unread)
/// and trains them.
fn train_step(
    s: &Setup,
    weights: &mut Weights,
    loader: &mut MixtureLoader,
    state: &TrainerState,
) -> Result<StepResult, TrainError> {
    // This rank's data-parallel share; under SP the ranks of a group read the same one.
    let part = loader
        .next_part(s.micro, s.dp_rank, s.dp)?
        .ok_or(TrainError::DataExhausted {
            step: state.step + 1,
        })?;
    let seqs = part
        .into_iter()
        .map(|q| PackedSequence::new(q.input_ids, &q.indices, q.mask.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let schedule = CosineSchedule::new(
        s.cfg.train.peak_lr,
        s.cfg.train.warmup,
        s.cfg.train.steps,
        s.cfg.train.min_lr_ratio,
    );
    let lr = schedule.lr(state.step);
    let (loss, grad_norm, flops) = weights.step(s, &seqs, lr, state.step + 1)?;
    Ok(StepResult {
        loss,
        lr,
        grad_norm,
        // Every sequence holds exactly seq_len tokens.
        tokens: s.micro * s.cfg.data.seq_len as u64,
        flops,
    })
}

/// The final checkpoint after the last step, a periodic one every `checkpoint.every`
/// steps (and the oldest pruned).
fn checkpoint_if_due(
    s: &Setup,
    weights: &mut Weights,
    state: &TrainerState,
) -> Result<(), TrainError> {
    let (every, steps) = (s.cfg.checkpoint.every, s.cfg.train.steps);
    let dir = if state.step == steps {
        s.out.join("final")
    } else if every > 0 && state.step % every == 0 {
        checkpoint::periodic_dir(&s.out, state.step)
    } else {
        return Ok(());
    };
    checkpoint::save_run(&dir, weights, state, s)?;
    if state.step != steps && s.root() {
        prune(&s.out, s.cfg.checkpoint.keep)?;
    }
    Ok(())
}

/// The loss chart, and the summary once every rank is done.
#[allow(clippy::too_many_arguments)]
fn finish(
    s: Setup,
    name: String,
    weights: Weights,
    state: TrainerState,
    held_out: Option<HeldOut>,
    resumed_from: Option<u64>,
    totals: RunTotals,
    peak: Peak,
) -> Result<TrainSummary, TrainError> {
    if s.root() {
        let title = if state.evals.is_empty() {
            format!("{name}: training loss")
        } else {
            format!("{name}: training and held-out loss")
        };
        let svg = crate::metrics::loss_svg(&state.metrics, &state.evals, &title);
        prolong_mds::write_atomic(&s.out.join("loss.svg"), svg.as_bytes()).map_err(|e| {
            TrainError::Checkpoint {
                path: s.out.join("loss.svg"),
                msg: e.to_string(),
            }
        })?;
    }
    // No rank leaves before rank 0's final checkpoint is in place.
    s.group.barrier()?;
    let memory = rank_memory(&s, &totals)?;
    Ok(TrainSummary {
        name,
        out: s.out,
        params: weights.numel(),
        steps: s.cfg.train.steps,
        steps_run: state.step - totals.start_step,
        resumed_from,
        tokens: state.tokens,
        first_loss: state.metrics.first().map(|r| r.loss),
        final_loss: state.metrics.last().map(|r| r.loss),
        eval_sequences: held_out.as_ref().map_or(0, |h| h.samples().len()),
        first_eval_loss: state.evals.first().map(|e| e.eval_loss),
        final_eval_loss: state.evals.last().map(|e| e.eval_loss),
        run_tokens: totals.tokens,
        run_flops: totals.flops,
        run_seconds: totals.start.elapsed().as_secs_f64() - totals.eval_seconds,
        threads: s.threads,
        peak,
        comm_seconds: totals.comm_seconds,
        memory,
    })
}
