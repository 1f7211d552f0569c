//! `prolong-eval export`: a checkpoint as an HF model folder (transformers, HELMET).

use std::path::PathBuf;

use candle_core::DType;
use prolong_eval::export::{ExportSpec, export};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Dtype {
    F32,
    Bf16,
    F16,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint directory (config.json + safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// The model's tokenizer.json (copied as is).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// tokenizer_config.json to ship (default: Llama-3's, with its chat template).
    #[arg(long)]
    pub tokenizer_config: Option<PathBuf>,
    /// Weights dtype of the export (default: as stored in the checkpoint).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    /// The HF model folder to create (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec = ExportSpec {
        model: &args.model,
        tokenizer: &args.tokenizer,
        tokenizer_config: args.tokenizer_config.as_deref(),
        dtype: args.dtype.map(|d| match d {
            Dtype::F32 => DType::F32,
            Dtype::Bf16 => DType::BF16,
            Dtype::F16 => DType::F16,
        }),
        out: &args.out,
    };
    let s = export(&spec)?;
    println!(
        "exported {} ({:?}, vocab {} for a tokenizer of {}): bos {}, eos {}, generation stops at {:?}",
        args.out.display(),
        s.dtype,
        s.vocab_size,
        s.tokenizer_vocab_size,
        s.bos_token_id,
        s.eos_token_id,
        s.stop_token_ids
    );
    Ok(())
}
