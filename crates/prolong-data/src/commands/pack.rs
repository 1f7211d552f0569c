use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use prolong_data::pack::{PackStats, Progress, TaskReport, read_all_stats, run_all, run_task};
use prolong_data::stage::pack::PackStep;
use prolong_data::task::TaskSpec;

use super::progress;

/// Pack tokenized documents into fixed-length sequences (ProLong's packer).
///
/// BOS and EOS are added around each document; documents are appended to a
/// buffer and every N tokens become one sequence, with `indices` marking the
/// document pieces in it. A document that does not fit continues in the next
/// sequence; the last partial buffer is dropped.
///
/// Output: OUT/[SUBSET/]procR-W/ per task (SUBSET = `{target}-{N}` with
/// --split-by-lengths), OUT/procR-W.stats.json and OUT/procR-W.done, and the
/// merged OUT/index.json once every task is done. A completed task is
/// skipped on a re-run; an interrupted one is redone from scratch.
///
/// Examples:
///   prolong-data pack data/tok/book --out data/packed-64k --len 65536
///   prolong-data pack data/tok/book --out data/book-split --len 524288 --split-by-lengths 65536,524288
///   prolong-data pack data/tok/* --out data/packed --len 65536 --world-size 64   # in a Slurm array
///   prolong-data pack data/tok/* --out data/packed --len 65536 --world-size 8 --all --threads 2
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    step: PackStep,
    /// This task's rank R: it reads input shards R, R+W, ... (default:
    /// SLURM_ARRAY_TASK_ID, else 0).
    #[arg(long, value_name = "R", conflicts_with = "all")]
    rank: Option<usize>,
    /// Number of tasks W of the whole run (default: SLURM_ARRAY_TASK_COUNT,
    /// else 1).
    #[arg(long, value_name = "W")]
    world_size: Option<usize>,
    /// Run every task of the run in this process (--threads at a time).
    #[arg(long)]
    all: bool,
    /// Tasks run at once with --all.
    #[arg(long, value_name = "T", default_value_t = 1)]
    threads: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let options = args.step.options();
    let start = Instant::now();
    let bar = progress::bar(0, "pack");
    let task = TaskSpec::resolve(args.rank, args.world_size)?;
    let world_size = task.world_size;
    let reports: Vec<TaskReport> = match args.all {
        false => {
            let mut on_progress = |p: Progress| {
                bar.set_length(p.samples_total);
                bar.set_position(p.samples_done);
            };
            vec![
                run_task(
                    &args.step.inputs,
                    task.at(&args.step.out),
                    &options,
                    &mut on_progress,
                )
                .with_context(|| format!("pack task {}", task.name()))?,
            ]
        }
        true => {
            let per_task = Mutex::new(vec![(0u64, 0u64); world_size]);
            let on_progress = |rank: usize, p: Progress| {
                if let Ok(mut all) = per_task.lock() {
                    all[rank] = (p.samples_done, p.samples_total);
                    bar.set_length(all.iter().map(|a| a.1).sum());
                    bar.set_position(all.iter().map(|a| a.0).sum());
                }
            };
            run_all(
                &args.step.inputs,
                &args.step.out,
                &options,
                world_size,
                args.threads,
                &on_progress,
            )
            .context("pack")?
        }
    };
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();

    let run_records = read_all_stats(&args.step.out, world_size)?;
    let merged = reports.iter().any(|r| r.merged);
    let here = PackStats::sum(
        reports
            .iter()
            .filter(|r| !r.skipped)
            .map(|r| &r.record.stats),
    );
    let total = PackStats::sum(run_records.iter().map(|r| &r.stats));
    if args.json {
        let out = serde_json::json!({
            "out": args.step.out,
            "options": options,
            "tasks_run": reports.iter().filter(|r| !r.skipped).map(|r| &r.record.header.task).collect::<Vec<_>>(),
            "tasks_skipped": reports.iter().filter(|r| r.skipped).map(|r| &r.record.header.task).collect::<Vec<_>>(),
            "tasks_complete": run_records.len(),
            "world_size": world_size,
            "merged": merged,
            "seconds": elapsed,
            "this_run": here,
            "total": total,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    let run_n = reports.iter().filter(|r| !r.skipped).count();
    println!(
        "pack     {} -> {}",
        describe_inputs(&args.step.inputs),
        args.step.out.display()
    );
    println!(
        "settings N={} min_length={} split={} intact={} bos={} eos={}",
        options.seq_len,
        options.min_length,
        if options.split_by_lengths.is_empty() {
            "-".to_string()
        } else {
            options
                .split_by_lengths
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
        options.intact,
        options.bos.map_or("-".into(), |b| b.to_string()),
        options.eos.map_or("-".into(), |e| e.to_string()),
    );
    println!(
        "tasks    {} run, {} skipped (already complete); {} of {} complete",
        run_n,
        reports.len() - run_n,
        run_records.len(),
        world_size
    );
    if run_n > 0 {
        println!(
            "speed    {:.1} s, {:.1} M tokens/s",
            elapsed,
            here.tokens_in as f64 / elapsed.max(1e-9) / 1e6
        );
    }
    let t = &total;
    println!(
        "documents {} in, {} with tokens in a sequence",
        t.documents_in, t.documents_out
    );
    println!(
        "tokens   {} in + {} BOS/EOS = {} out + {} dropped ({:.2}%)",
        t.tokens_in,
        t.special_tokens_added,
        t.tokens_out,
        t.tokens_dropped,
        100.0 * t.tokens_dropped as f64 / (t.tokens_in + t.special_tokens_added).max(1) as f64
    );
    println!(
        "dropped  min_length {}, intact {}, split remainder {}, last buffer {}",
        t.dropped.min_length, t.dropped.intact, t.dropped.split_remainder, t.dropped.last_buffer
    );
    println!(
        "sequences {} of {} tokens ({:.2} document pieces each)",
        t.sequences,
        options.seq_len,
        t.pieces as f64 / t.sequences.max(1) as f64
    );
    for (subset, n) in &t.sequences_per_subset {
        println!("  {subset:<30} {n:>10}");
    }
    if !t.length_histogram.buckets.is_empty() {
        println!("document lengths (tokens):");
        for b in &t.length_histogram.buckets {
            println!(
                "  {:>9} ..{:>9} {:>10} docs {:>14} tokens",
                b.min, b.max, b.documents, b.tokens
            );
        }
    }
    if merged {
        println!(
            "index    {}",
            args.step.out.join(prolong_mds::INDEX_FILE).display()
        );
    } else {
        println!(
            "index    not merged yet: waiting for {} more task(s)",
            world_size - run_records.len()
        );
    }
    Ok(())
}

fn describe_inputs(inputs: &[PathBuf]) -> String {
    match inputs {
        [one] => one.display().to_string(),
        [first, ..] => format!("{} and {} more", first.display(), inputs.len() - 1),
        [] => String::new(),
    }
}
