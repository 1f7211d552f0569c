use std::collections::BTreeMap;

use anyhow::Context;
use prolong_data::repos::TaskReport;
use prolong_data::stage::repos::ReposStep;
use prolong_data::task::TaskSpec;

use super::task_args::{StageArgs, StageCommand};

/// `prolong-data repos` (its help text is on `Command::Repos` in main.rs).
pub type Args = StageArgs<ReposStep>;

impl StageCommand for ReposStep {
    const JSON_HELP: &'static str = "Print the summary as JSON";

    fn run(&self, task: TaskSpec, json: bool) -> anyhow::Result<()> {
        let options = self.options();
        let bar = super::progress::bar(0, "repos");
        let report = prolong_data::repos::run_task(
            &self.input,
            &self.out,
            &options,
            task.rank,
            task.world_size,
            &mut |p| {
                bar.set_length(p.repos_total);
                bar.set_position(p.repos_done);
            },
        )
        .with_context(|| format!("repos {}", self.input.display()))?;
        bar.finish_and_clear();
        if json {
            println!("{}", summary_json(&report));
        } else {
            print_summary(&report);
        }
        Ok(())
    }
}

fn summary_json(report: &TaskReport) -> serde_json::Value {
    serde_json::json!({
        "part": report.part,
        "already_done": report.skipped,
        "stats": report.stats,
    })
}

fn reasons(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_string();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_summary(report: &TaskReport) {
    let s = &report.stats;
    let state = if report.skipped {
        " (already done, not redone)"
    } else {
        ""
    };
    println!("repos {}{state}: {}", s.header.task, report.part.display());
    println!(
        "  repositories: {} in, {} documents, skipped: {}",
        s.repos_in,
        s.repos_out,
        reasons(&s.repos_skipped)
    );
    println!(
        "  files kept:   {} ({} bytes; {} bytes of text)",
        s.files_kept, s.bytes_kept, s.text_bytes
    );
    println!("  files skipped: {}", reasons(&s.files_skipped));
    let problems = s.problems.len() as u64 + s.problems_not_listed;
    if problems > 0 {
        println!("  problems: {problems} (all in the stats file); first ones:");
        for p in s.problems.iter().take(5) {
            match &p.path {
                Some(path) => println!("    {}/{path}: {} ({})", p.repo, p.reason, p.error),
                None => println!("    {}: {} ({})", p.repo, p.reason, p.error),
            }
        }
    }
}
