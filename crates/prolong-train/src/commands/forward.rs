//! `prolong-train forward`: logits and loss of one packed sequence.

use prolong_packed::columns;
use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use prolong_train::{Llama, PackedSequence};

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// HF checkpoint directory (config.json + safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// safetensors with `input_ids` [T], optional `indices` [n, 2] and optional `mask` [T]
    /// (any integer dtypes).
    #[arg(long)]
    pub batch: PathBuf,
    /// Where to write `logits` [T, V] (f32), `loss` and `label_tokens`.
    #[arg(long)]
    pub out: PathBuf,
}

fn ints(t: &Tensor) -> Result<Vec<i64>> {
    Ok(t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?)
}

pub fn main(args: ForwardArgs) -> Result<()> {
    let model = Llama::load(&args.model, DType::F32, &Device::Cpu)
        .with_context(|| format!("model {}", args.model.display()))?;
    let batch = candle_core::safetensors::load(&args.batch, &Device::Cpu)
        .with_context(|| format!("batch {}", args.batch.display()))?;
    let get = |n: &str| batch.get(n);
    let Some(ids) = get(columns::INPUT_IDS) else {
        bail!("{}: no `input_ids` tensor", args.batch.display());
    };
    let ids = ints(ids)?;
    if let Some(bad) = ids.iter().find(|&&i| i < 0 || i > u32::MAX as i64) {
        bail!("{}: input id {bad} is not a token id", args.batch.display());
    }
    let ids: Vec<u32> = ids.into_iter().map(|i| i as u32).collect();
    let indices: Vec<[usize; 2]> = match get(columns::INDICES) {
        Some(t) => {
            if t.rank() != 2 || t.dim(1)? != 2 {
                bail!(
                    "{}: `indices` must have shape [n, 2], not {:?}",
                    args.batch.display(),
                    t.dims()
                );
            }
            let v = ints(t)?;
            if v.iter().any(|&x| x < 0) {
                bail!("{}: negative `indices`", args.batch.display());
            }
            v.chunks(2)
                .map(|c| [c[0] as usize, c[1] as usize])
                .collect()
        }
        None => vec![[0, ids.len()]],
    };
    let mask: Option<Vec<u8>> = match get(columns::MASK) {
        Some(t) => Some(ints(t)?.into_iter().map(|x| u8::from(x != 0)).collect()),
        None => None,
    };
    let seq = PackedSequence::new(ids, &indices, mask.as_deref())
        .with_context(|| format!("batch {}", args.batch.display()))?;
    let logits = model.logits(&seq)?;
    let loss = model.loss(&seq)?;
    let mut out = HashMap::new();
    out.insert("logits".to_string(), logits.to_dtype(DType::F32)?);
    out.insert(
        "loss".to_string(),
        Tensor::new(loss.loss as f32, &Device::Cpu)?,
    );
    out.insert(
        "label_tokens".to_string(),
        Tensor::new(loss.label_tokens as i64, &Device::Cpu)?,
    );
    prolong_mds::write_atomic_path(&args.out, |tmp| {
        candle_core::safetensors::save(&out, tmp)
            .with_context(|| format!("writing {}", args.out.display()))
    })?;
    println!(
        "{} tokens, {} label tokens, loss {:.6} → {}",
        seq.len(),
        loss.label_tokens,
        loss.loss,
        args.out.display()
    );
    Ok(())
}
