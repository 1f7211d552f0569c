use std::path::PathBuf;

use anyhow::Context;

/// Check every shard of a dataset against its index.json.
///
/// Re-hashes every shard file, checks headers, offsets and configs, decodes
/// every column of every sample and checks the packed-sample rule where
/// ProLong's columns are present (length equals the tokens; indices sorted,
/// disjoint, within the sequence; mask 0/1 per token). Prints the first problem, naming the shard and
/// sample, and exits non-zero.
///
/// Example: prolong-data verify data/packed-64k
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Dataset folder (holding index.json; a merged root works too).
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report = prolong_mds::verify_with(&args.dir, &prolong_packed::check_sample)
        .with_context(|| format!("verify {}", args.dir.display()))?;
    println!(
        "ok: {} — {} shards, {} samples, {} bytes of shard data ({} on disk)",
        args.dir.display(),
        report.shards,
        report.samples,
        report.raw_bytes,
        report.disk_bytes
    );
    Ok(())
}
