//! `prolong-train plan`: per-rank memory, step FLOPs and bytes moved of a stage
//! recipe on a given cluster, and the knob that makes it fit (see `prolong_train::plan`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use prolong_train::LlamaConfig;
use prolong_train::plan::{PlanDevice, PlanInput, ShardMode};
use prolong_train::stage::{StageConfig, parse_size};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The stage recipe (TOML): sequence length, tokens per step, loss block, model.
    #[arg(long, short)]
    pub config: PathBuf,
    /// GPUs (ranks) in all.
    #[arg(long, default_value_t = 8)]
    pub gpus: usize,
    /// Memory of one GPU: bytes, or a number with KB/MB/GB (powers of 1000) or
    /// KiB/MiB/GiB.
    #[arg(long, default_value = "80GB")]
    pub gpu_memory: String,
    /// How training state is split over the ranks (ProLong's --fsdp 1/2/3 are
    /// full/grad-op/none); default: the recipe's `[parallel] shard`.
    #[arg(long, value_enum)]
    pub shard: Option<ShardMode>,
    /// Ulysses sequence-parallel group size (ProLong's --seq_parallel_size); default:
    /// the recipe's `[parallel] sequence`.
    #[arg(long)]
    pub sp: Option<usize>,
    /// What to model: `gpu`, the design for GPUs (layer-by-layer gathering), or `cpu`,
    /// the trainer as it runs on CPU ranks today (whole-model compute weights on every
    /// rank; what the measured-memory check compares against).
    #[arg(long, value_enum, default_value = "gpu")]
    pub device: PlanDevice,
    /// Packed sequences per micro-batch on each data-parallel group.
    #[arg(long, default_value_t = 1)]
    pub micro_batch: usize,
    /// Keep every layer's activations instead of recomputing them in the backward
    /// (ProLong recomputes: --gradient_checkpointing).
    #[arg(long)]
    pub no_recompute: bool,
    /// The model's config.json, instead of the recipe's model (e.g. before the
    /// weights are downloaded).
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: PlanArgs) -> Result<()> {
    // With --model-config the recipe's own model need not exist yet (whose check is
    // part of loading a recipe): parse it without the checks.
    let stage = match &args.model_config {
        Some(_) => {
            let text = std::fs::read_to_string(&args.config)
                .with_context(|| format!("{}", args.config.display()))?;
            StageConfig::parse(&text, &args.config)?
        }
        None => StageConfig::load(&args.config)?,
    };
    let model = match &args.model_config {
        Some(path) => {
            LlamaConfig::load(path).with_context(|| format!("--model-config {}", path.display()))?
        }
        None => stage.llama_config(&args.config).context(
            "the recipe's model (pass --model-config PATH/config.json if it is not downloaded yet)",
        )?,
    };
    let Some(device_bytes) = parse_size(&args.gpu_memory) else {
        bail!("--gpu-memory {:?}: not a size (e.g. 80GB)", args.gpu_memory);
    };
    let input = PlanInput {
        model,
        seq_len: stage.data.seq_len,
        micro_batch: args.micro_batch,
        tokens_per_step: stage.train.tokens_per_step,
        world: args.gpus,
        sp: args.sp.unwrap_or(stage.parallel.sequence),
        shard: args.shard.unwrap_or(stage.parallel.shard),
        recompute: !args.no_recompute,
        loss_block: stage.train.loss_block,
        device_bytes,
        // The recipe's compute dtype: bf16 is 2 bytes, f32 (and anything else) 4.
        dtype_bytes: stage.model.dtype.bytes(),
        device: args.device,
    };
    let plan = input.plan()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan.table(&input));
    }
    Ok(())
}
