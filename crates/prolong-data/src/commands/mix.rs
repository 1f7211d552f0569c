use anyhow::Context;
use prolong_data::mix::write_manifest;
use prolong_data::stage::mix::MixStep;

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
    #[command(flatten)]
    step: MixStep,
    /// Print the manifest instead of a summary.
    #[arg(long)]
    print: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = args.step.manifest(|p| Ok(p.to_path_buf()))?;
    let text = write_manifest(&manifest, &args.step.out)
        .with_context(|| format!("write {}", args.step.out.display()))?;
    if args.print {
        print!("{text}");
        return Ok(());
    }
    println!(
        "mix → {} ({} streams, sequence length {}, {} samples)",
        args.step.out.display(),
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
