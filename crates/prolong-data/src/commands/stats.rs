use prolong_packed::columns;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prolong_data::task::LengthHistogram;
use prolong_mds::{MdsDataset, Value, svg};

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

const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// 1, 2, ..., 512, 1K, ..., 512K, 1M, ...
fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

/// Bucket position on x: 0 for length 0, k + 1 for [2^k, 2^(k+1)).
fn slot(min: u64) -> u32 {
    if min == 0 {
        0
    } else {
        64 - min.leading_zeros()
    }
}

/// A hand-written SVG: log2 length buckets on x, documents (or tokens) on
/// y, one line per domain with a point per bucket, a legend and axis labels.
fn render_svg(hists: &BTreeMap<String, LengthHistogram>, tokens: bool, title: &str) -> String {
    let (w, h) = (900.0_f64, 480.0_f64);
    let (left, right, top, bottom) = (80.0, 220.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let value = |b: &prolong_data::task::LengthBucket| if tokens { b.tokens } else { b.documents };
    let slots: Vec<u32> = hists
        .values()
        .flat_map(|h| h.buckets.iter().map(|b| slot(b.min)))
        .collect();
    let lo = slots.iter().copied().min().unwrap_or(0);
    let hi = slots.iter().copied().max().unwrap_or(1).max(lo + 1);
    let ymax = hists
        .values()
        .flat_map(|h| h.buckets.iter().map(value))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |s: u32| left + pw * f64::from(s - lo) / f64::from(hi - lo);
    let y = |v: u64| top + ph - ph * v as f64 / ymax;
    let mut s = svg::begin(
        w,
        h,
        left + pw / 2.0,
        &format!("Document lengths by domain: {title}"),
    );
    // Axes, ticks and grid.
    let _ = writeln!(
        s,
        r#"<path d="M{left},{top} V{} H{}" fill="none" stroke="black"/>"#,
        top + ph,
        left + pw
    );
    for sl in lo..=hi {
        let label = if sl == 0 {
            "0".to_string()
        } else {
            human(1u64 << (sl - 1))
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(sl),
            top + ph + 16.0
        );
    }
    for k in 0..=4u64 {
        let v = (ymax * k as f64 / 4.0).round() as u64;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">document length in tokens (log2 buckets: [2^k, 2^(k+1)) at 2^k)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        if tokens { "tokens" } else { "documents" }
    );
    // Series and legend.
    for (i, (domain, hist)) in hists.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = hist
            .buckets
            .iter()
            .map(|b| (x(slot(b.min)), y(value(b))))
            .collect();
        let name = svg::escape(domain);
        let _ = writeln!(
            s,
            r#"<g class="series" data-domain="{name}"><polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            svg::points(&points)
        );
        for b in &hist.buckets {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{name}: {} documents, {} tokens of length {}..{}</title></circle>"#,
                x(slot(b.min)),
                y(value(b)),
                b.documents,
                b.tokens,
                b.min,
                b.max
            );
        }
        let _ = writeln!(s, "</g>");
        let ly = top + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect class="legend" x="{}" y="{:.1}" width="14" height="4" fill="{color}"/><text x="{}" y="{:.1}">{name}</text>"#,
            left + pw + 20.0,
            ly - 4.0,
            left + pw + 40.0,
            ly
        );
    }
    svg::end(s)
}
