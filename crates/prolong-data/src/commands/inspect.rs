use prolong_packed::columns;
use std::path::PathBuf;

use anyhow::Context;
use prolong_data::summary::DatasetSummary;
use prolong_mds::{MdsDataset, Value};

use super::progress;

/// Show what an MDS dataset holds: columns, shards, samples, tokens, and
/// documents and tokens per domain. With --sample, print one sample.
///
/// Examples:
///   prolong-data inspect data/packed-64k
///   prolong-data inspect data/packed-64k --sample 3 --tokenizer fixtures/cache/tokenizer.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset folder (holding index.json; a merged root works too).
    dir: PathBuf,
    /// Print sample I instead of the summary.
    #[arg(long, value_name = "I")]
    sample: Option<usize>,
    /// HF tokenizer.json to decode input_ids to text with (--sample).
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Uncached: a compressed dataset is decompressed in memory, shard by
    // shard, never written beside its zip files.
    let mut dataset = MdsDataset::open_uncached(&args.dir)
        .with_context(|| format!("open {}", args.dir.display()))?;
    match args.sample {
        Some(i) => print_sample(&dataset, i, args.tokenizer.as_ref()),
        None => print_summary(&mut dataset, args.json),
    }
}

fn print_summary(dataset: &mut MdsDataset, json: bool) -> anyhow::Result<()> {
    let bar = progress::bar(dataset.len() as u64, "inspect");
    let summary = DatasetSummary::compute(dataset, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let index = dataset.index();
    let raw: u64 = index.shards.iter().map(|s| s.raw_data.bytes).sum();
    let disk: u64 = index
        .shards
        .iter()
        .map(|s| s.zip_data.as_ref().unwrap_or(&s.raw_data).bytes)
        .sum();
    let first = index.shards.first();
    if json {
        let out = serde_json::json!({
            "dir": dataset.dir(),
            "shards": index.shards.len(),
            "raw_bytes": raw,
            "disk_bytes": disk,
            "compression": first.and_then(|s| s.compression.clone()),
            "hashes": first.map(|s| s.hashes.clone()).unwrap_or_default(),
            "columns": dataset.columns().iter().map(|c| (c.name.clone(), serde_json::Value::from(c.encoding.to_string()))).collect::<serde_json::Map<_, _>>(),
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let columns: Vec<String> = dataset
        .columns()
        .iter()
        .map(|c| format!("{} {}", c.name, c.encoding))
        .collect();
    println!("dataset  {}", dataset.dir().display());
    println!("columns  {}", columns.join(" | "));
    println!(
        "shards   {} ({} of shard data, {} on disk; compression {}; hashes {})",
        index.shards.len(),
        human_bytes(raw),
        human_bytes(disk),
        first
            .and_then(|s| s.compression.clone())
            .unwrap_or_else(|| "none".into()),
        first
            .map(|s| s.hashes.join(","))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "none".into()),
    );
    let t = &summary.total;
    println!("samples  {}", t.samples);
    println!(
        "tokens   {} ({:.1} per sample)",
        t.tokens,
        t.tokens as f64 / t.samples.max(1) as f64
    );
    println!(
        "documents {} (pieces of documents in packed data)",
        t.documents
    );
    println!();
    println!(
        "{:<36} {:>10} {:>10} {:>14} {:>7}",
        "domain", "samples", "documents", "tokens", "share"
    );
    for (domain, c) in &summary.domains {
        println!(
            "{:<36} {:>10} {:>10} {:>14} {:>6.1}%",
            if domain.is_empty() { "(none)" } else { domain },
            c.samples,
            c.documents,
            c.tokens,
            100.0 * c.tokens as f64 / t.tokens.max(1) as f64
        );
    }
    Ok(())
}

fn print_sample(dataset: &MdsDataset, i: usize, tokenizer: Option<&PathBuf>) -> anyhow::Result<()> {
    let sample = dataset.get(i)?;
    for (name, value) in sample.values()? {
        println!("{name}: {}", describe(&value));
    }
    let Some(path) = tokenizer else {
        return Ok(());
    };
    let tokenizer = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let ids = sample.u32s(columns::INPUT_IDS)?;
    let pieces: Vec<(usize, usize)> = if sample.has(columns::INDICES) {
        sample
            .u32s(columns::INDICES)?
            .chunks_exact(2)
            .map(|p| (p[0] as usize, p[1] as usize))
            .collect()
    } else {
        vec![(0, ids.len())]
    };
    // The tokenizers crate's decode drops ids it does not know: refuse them
    // instead of printing text with pieces silently missing.
    if let Some((at, id)) = ids
        .iter()
        .enumerate()
        .find(|&(_, &id)| tokenizer.id_to_token(id).is_none())
    {
        anyhow::bail!(
            "sample {i}: input_ids[{at}] = {id} is not in the vocabulary of {} ({} ids)",
            path.display(),
            tokenizer.get_vocab_size(true)
        );
    }
    for (k, (start, end)) in pieces.into_iter().enumerate() {
        let piece = ids
            .get(start..end)
            .with_context(|| format!("indices [{start}, {end}) outside the sequence"))?;
        let text = tokenizer
            .decode(piece, false)
            .map_err(|e| anyhow::anyhow!("decode: {e}"))?;
        println!("\n--- document piece {k} [{start}, {end}) ---\n{text}");
    }
    Ok(())
}

fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Array(a) => {
            let shown: Vec<String> = (0..a.len().min(16))
                .filter_map(|i| a.get(i))
                .map(|s| match s.as_i128() {
                    Some(v) => v.to_string(),
                    None => s.as_f64().to_string(),
                })
                .collect();
            let more = if a.len() > 16 { ", ..." } else { "" };
            format!("{} {:?} [{}{more}]", a.dtype, a.shape, shown.join(", "))
        }
        Value::Str(s) if s.len() > 200 => format!(
            "{:?}... ({} bytes)",
            &s[..s.floor_char_boundary(200)],
            s.len()
        ),
        Value::Str(s) => format!("{s:?}"),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::Int(v) => v.to_string(),
        Value::Scalar(s) => format!("{s:?}"),
        Value::Json(j) => j.to_string(),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
