use prolong_packed::columns;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prolong_data::task::LengthHistogram;
use prolong_mds::{MdsDataset, Value};
use prolong_plot::lengths::{Bucket, lengths};

use super::progress;

/// Document lengths per domain, in power-of-two buckets: a table, --json, or
/// an SVG histogram (--plot).
///
/// Tokenized data: one document per sample (its `length`, else the
/// `input_ids` length). Packed data: one document piece per row of
/// `indices` (end - start, with the BOS/EOS the packer added). Domains are the
/// `domain` column ("." — a packed root without subsets — shows as the
/// folder's name).
///
/// Examples:
///   prolong-data stats data/tok/book
///   prolong-data stats data/packed/book-split --plot book.svg --y tokens
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset folder (holding index.json; a merged root works too).
    dir: PathBuf,
    /// Write the histogram as an SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// What the plot's y axis counts.
    #[arg(long, default_value = "documents", value_parser = ["documents", "tokens"])]
    y: String,
    /// Print the histograms as JSON.
    #[arg(long)]
    json: bool,
}

/// Length histograms by domain.
fn histograms(
    dataset: &mut MdsDataset,
    dir: &Path,
) -> anyhow::Result<BTreeMap<String, LengthHistogram>> {
    let fallback = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| ".".into());
    let mut out: BTreeMap<String, LengthHistogram> = BTreeMap::new();
    prolong_data::summary::check_columns(dataset)?;
    let bar = progress::bar(dataset.len() as u64, "stats");
    let mut i = 0;
    for shard in 0..dataset.num_shards() {
        for local in 0..dataset.index().shards[shard].samples as usize {
            let sample = dataset.get_in_shard(shard, local)?;
            let domain = if sample.has(columns::DOMAIN) {
                sample.str(columns::DOMAIN)?
            } else {
                ""
            };
            let domain = match domain {
                "." | "" => fallback.clone(),
                d => d.to_string(),
            };
            let hist = out.entry(domain).or_default();
            if sample.has(columns::INDICES) {
                let indices = sample.u32s(columns::INDICES)?;
                for pair in indices.chunks_exact(2) {
                    hist.add(u64::from(pair[1].saturating_sub(pair[0])));
                }
            } else {
                let length = if sample.has(columns::LENGTH) {
                    prolong_data::summary::sample_length(&sample)?
                } else {
                    match sample.get(columns::INPUT_IDS)? {
                        Value::Array(a) => a.len() as u64,
                        _ => anyhow::bail!("sample {i}: input_ids is not an array"),
                    }
                };
                hist.add(length);
            }
            i += 1;
            if i % 4096 == 0 {
                bar.set_position(i as u64);
            }
        }
        // One shard held at a time, whatever the dataset's size.
        dataset.release_shard(shard);
    }
    bar.finish_and_clear();
    Ok(out)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Uncached: a compressed dataset is decompressed in memory, shard by
    // shard, never written beside its zip files.
    let mut dataset = MdsDataset::open_uncached(&args.dir)
        .with_context(|| format!("open {}", args.dir.display()))?;
    let hists = histograms(&mut dataset, &args.dir)?;
    if let Some(path) = &args.plot {
        let svg = render_svg(&hists, args.y == "tokens", &args.dir.display().to_string());
        prolong_mds::write_atomic(path, svg.as_bytes())
            .with_context(|| format!("write {}", path.display()))?;
    }
    if args.json {
        let domains: serde_json::Map<String, serde_json::Value> = hists
            .iter()
            .map(|(d, h)| {
                let docs: u64 = h.buckets.iter().map(|b| b.documents).sum();
                let tokens: u64 = h.buckets.iter().map(|b| b.tokens).sum();
                (
                    d.clone(),
                    serde_json::json!({"documents": docs, "tokens": tokens, "buckets": h.buckets}),
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"dir": args.dir, "domains": domains})
            )?
        );
        return Ok(());
    }
    println!("dataset  {}", args.dir.display());
    println!(
        "{:<34} {:>11} {:>11} {:>10} {:>14}",
        "domain", "length ≥", "length ≤", "documents", "tokens"
    );
    for (domain, h) in &hists {
        for b in &h.buckets {
            println!(
                "{:<34} {:>11} {:>11} {:>10} {:>14}",
                domain, b.min, b.max, b.documents, b.tokens
            );
        }
        let docs: u64 = h.buckets.iter().map(|b| b.documents).sum();
        let tokens: u64 = h.buckets.iter().map(|b| b.tokens).sum();
        println!(
            "{:<34} {:>11} {:>11} {:>10} {:>14}",
            domain, "all", "", docs, tokens
        );
    }
    if let Some(path) = &args.plot {
        println!("plot     {}", path.display());
    }
    Ok(())
}

/// The chart of `prolong_plot::lengths`: one line per domain, in domain order.
fn render_svg(hists: &BTreeMap<String, LengthHistogram>, tokens: bool, title: &str) -> String {
    let series: Vec<(String, Vec<Bucket>)> = hists
        .iter()
        .map(|(domain, h)| {
            let buckets = h.buckets.iter().map(|b| Bucket {
                min: b.min,
                max: b.max,
                documents: b.documents,
                tokens: b.tokens,
            });
            (domain.clone(), buckets.collect())
        })
        .collect();
    lengths(&series, tokens, title)
}
