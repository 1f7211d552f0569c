use std::path::PathBuf;

use anyhow::Context;
use prolong_data::mix::{Preset, StreamSpec, build_manifest, preset_streams, write_manifest};

/// Write the mixture manifest (TOML) that prolong-train reads.
///
/// Streams are packed MDS folders, [NAME=]DIR@PROPORTION (proportions of
/// sequences, ≥ 0, normalised), or a preset of ProLong's released mixtures
/// with --root holding its folders (thestackv1_concat_by_repo-65536,
/// book-65536, fineweb-edu, ...). Every stream must hold samples of one
/// sequence length (checked on each stream's first sample). Paths are written
/// relative to the manifest's folder; the manifest also records the sequence
/// length and each stream's sample count.
///
/// Examples:
///   prolong-data mix --out data/mix/stage1-64k.toml \
///       book-65536=data/packed/book-65536@0.3 code-65536=data/packed/code-65536@0.3 ...
///   prolong-data mix --out data/mix/stage2-512k.toml --preset prolong-512k \
///       --root data/prolong-data-512K
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Streams, [NAME=]DIR@PROPORTION (not with --preset).
    #[arg(value_name = "STREAM")]
    streams: Vec<String>,
    /// The manifest file to write.
    #[arg(long)]
    out: PathBuf,
    /// ProLong's released mixture: prolong-64k or prolong-512k.
    #[arg(long, requires = "root", value_parser = ["prolong-64k", "prolong-512k"])]
    preset: Option<String>,
    /// The folder holding the preset's folders.
    #[arg(long, requires = "preset")]
    root: Option<PathBuf>,
    /// Leave out preset folders that are missing and renormalise the rest.
    #[arg(long, requires = "preset")]
    allow_missing: bool,
    /// Require this sequence length of every stream.
    #[arg(long)]
    sequence_length: Option<u64>,
    /// Print the manifest instead of a summary.
    #[arg(long)]
    print: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (streams, preset, missing) = match (&args.preset, &args.root) {
        (Some(name), Some(root)) => {
            anyhow::ensure!(
                args.streams.is_empty(),
                "give either streams or --preset, not both"
            );
            let preset = Preset::from_name(name)
                .ok_or_else(|| anyhow::anyhow!("unknown preset {name:?}"))?;
            let (streams, missing) = preset_streams(preset, root, args.allow_missing)?;
            (streams, Some(preset), missing)
        }
        _ => {
            anyhow::ensure!(
                !args.streams.is_empty(),
                "no streams: give [NAME=]DIR@PROPORTION arguments or --preset with --root"
            );
            let streams = args
                .streams
                .iter()
                .map(|a| StreamSpec::parse(a))
                .collect::<Result<Vec<_>, _>>()?;
            (streams, None, Vec::new())
        }
    };
    let mut manifest = build_manifest(&streams, args.sequence_length)?;
    manifest.preset = preset.map(|p| p.name().to_string());
    manifest.missing = missing;
    let text = write_manifest(&manifest, &args.out)
        .with_context(|| format!("write {}", args.out.display()))?;
    if args.print {
        print!("{text}");
        return Ok(());
    }
    println!(
        "mix → {} ({} streams, sequence length {}, {} samples)",
        args.out.display(),
        manifest.streams.len(),
        manifest.sequence_length,
        manifest.total_samples
    );
    for s in &manifest.streams {
        println!(
            "{:<34} {:>7.4} {:>10} samples  {}",
            s.name,
            s.proportion,
            s.samples,
            s.path.display()
        );
    }
    if !manifest.missing.is_empty() {
        println!(
            "missing (left out, the rest renormalised): {}",
            manifest.missing.join(", ")
        );
    }
    Ok(())
}
