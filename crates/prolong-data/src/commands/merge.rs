use std::path::PathBuf;

use anyhow::Context;

/// Write a root index.json joining every sub-folder's index.json.
///
/// The result is what mosaicml-streaming's merge_index writes: shard basenames
/// point into the sub-folders (ProLong's procNN-64/ layout).
///
/// Example: prolong-data merge data/packed-64k
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Root folder whose sub-folders hold MDS datasets.
    dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let index = prolong_mds::merge_index(&args.dir)
        .with_context(|| format!("merge {}", args.dir.display()))?;
    println!(
        "merged {} shards, {} samples into {}",
        index.shards.len(),
        index.total_samples(),
        args.dir.join(prolong_mds::INDEX_FILE).display()
    );
    Ok(())
}
