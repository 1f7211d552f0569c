//! `prolong-train train`: run or resume one stage recipe.

use std::path::PathBuf;

use anyhow::{Context, Result};
use prolong_train::metrics::human;
use prolong_train::stage::StageConfig;
use prolong_train::train::{TrainOptions, run};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The stage recipe (TOML), e.g. pipelines/tiny-stage1.toml.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Continue from the newest complete checkpoint in the output directory (starts
    /// afresh when there is none).
    #[arg(long)]
    pub resume: bool,
    /// Output directory (default: the recipe's checkpoint.out).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where each rank trains: auto, cpu, cuda (the local rank's GPU) or cuda:N
    /// (default: the recipe's `[device] kind`, else auto: cuda:LOCAL_RANK on a `cuda`
    /// build with GPUs, else the CPU).
    #[arg(long)]
    pub device: Option<prolong_train::stage::DeviceChoice>,
}

/// Reads the recipe and fixes the matmul thread count before any tensor op runs.
pub fn prepare(args: &TrainArgs) -> Result<StageConfig> {
    let cfg = StageConfig::load(&args.config)?;
    if let Some(n) = cfg.train.threads {
        // SAFETY: called from main before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    Ok(cfg)
}

pub fn main(args: TrainArgs, cfg: StageConfig) -> Result<()> {
    let opts = TrainOptions {
        resume: args.resume,
        out: args.out.clone(),
        progress: !args.quiet,
        device: args.device,
    };
    let s = run(&args.config, &cfg, &opts)
        .with_context(|| format!("stage {}", args.config.display()))?;
    // Rank 0 reports for the world (the summary is the same on every rank).
    if !prolong_train::dist::rank::RankInfo::from_env()?.is_root() {
        return Ok(());
    }
    if s.steps_run == 0 {
        println!(
            "{}: already complete ({} steps) in {}",
            s.name,
            s.steps,
            s.out.display()
        );
        return Ok(());
    }
    let resumed = s
        .resumed_from
        .map(|r| format!(", resumed from step {r}"))
        .unwrap_or_default();
    println!(
        "{}: {} steps ({} this run{resumed}), {} tokens, {} parameters",
        s.name,
        s.steps,
        s.steps_run,
        human(s.tokens as f64),
        human(s.params as f64)
    );
    if let (Some(a), Some(b)) = (s.first_loss, s.final_loss) {
        println!("training loss {a:.4} → {b:.4}");
    }
    if let (Some(a), Some(b)) = (s.first_eval_loss, s.final_eval_loss) {
        println!(
            "held-out loss ({} sequences never trained on) {a:.4} → {b:.4} ({:+.4}, {:+.1}%)",
            s.eval_sequences,
            b - a,
            100.0 * (b - a) / a
        );
    }
    let pct = |u: Option<f64>| {
        u.map(|u| format!("{:.1}%", 100.0 * u))
            .unwrap_or_else(|| "n/a (FLOP rate above the peak: the peak is wrong)".into())
    };
    println!(
        "{} tokens/s over {:.1} s on {} thread(s); model FLOPs {}, executed {} (with recomputation)",
        human(s.tokens_per_s()),
        s.run_seconds,
        s.threads,
        human(s.run_flops.model),
        human(s.run_flops.executed()),
    );
    println!(
        "MFU {} and HFU {} of {:.3} TFLOP/s ({})",
        pct(s.mfu()),
        pct(s.hfu()),
        s.peak.tflops,
        s.peak.source
    );
    report_comm_and_memory(&s);
    println!("out: {} (final/, metrics.jsonl, loss.svg)", s.out.display());
    Ok(())
}

/// Rank 0's time inside collectives, and every rank's peak resident memory (what
/// `prolong-train plan --device cpu` is checked against: the peak less the process's
/// footprint before the model existed).
fn report_comm_and_memory(s: &prolong_train::train::TrainSummary) {
    if s.comm_seconds > 0.0 {
        println!(
            "communication: {:.1}% of step time ({:.2} s inside collectives on rank 0)",
            100.0 * s.comm_share(),
            s.comm_seconds
        );
    }
    let mb = |b: u64| b as f64 / 1e6;
    for (rank, m) in s.memory.iter().enumerate() {
        println!(
            "rank {rank} memory: peak {:.1} MB (with checkpoints), before the model {:.1} MB, through the steps {:.1} MB, training {:.1} MB",
            mb(m.peak_bytes),
            mb(m.baseline_bytes),
            mb(m.step_peak_bytes),
            mb(m.training_bytes())
        );
    }
}
