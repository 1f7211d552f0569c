use std::collections::BTreeMap;

use anyhow::Context;
use prolong_data::repos::TaskReport;
use prolong_data::stage::repos::ReposStep;
use prolong_data::task::TaskSpec;

use super::task_args::{StageArgs, StageCommand};

/// `prolong-data repos` (its help text is `HELP` below).
pub type Args = StageArgs<ReposStep>;

impl StageCommand for ReposStep {
    const HELP: &'static str = r#"Turn a folder of code repositories into documents, one per repository.

Each entry of INPUT_DIR is a repository: a git repository (read from its
HEAD commit, bare or not; nothing is checked out) or a plain folder
(walked honouring its .gitignore files). Its kept files, in byte order of
their paths, each after a header line `==> PATH <==` and separated by a
blank line, make the document's text. Binary, oversized, vendored and
generated files, and those failing the BigCode line filters, are skipped
and counted by reason; symbolic links and submodules are never followed.

Every byte comes from inside the repository's own entry: no git config
(the repository's, /etc/gitconfig, ~/.gitconfig) and no GIT_* variable
is read; a repository pointing elsewhere (a .git file or link, commondir,
objects/info/alternates, a linked objects or refs folder) is skipped as
redirected_git_dir. A missing blob (a partial clone) skips that file
(missing_object); a repository over --max-files entries, --max-depth
path components or --max-repo-bytes bytes read is skipped whole
(too_many_files, too_deep, too_large), found while the tree is streamed,
so a "tree bomb" never fills memory.

--dedup-files keeps each content (git blob id) in the first entry of
INPUT_DIR, in sorted order, holding it past the path filters, whatever
--world-size: each task first surveys the trees (and blob sizes) of its
entries and of every earlier entry (plain folders are read for it).

Task R of N (--rank/--world-size, by default SLURM_ARRAY_TASK_ID /
SLURM_ARRAY_TASK_COUNT, else 0 of 1) takes entries R, R+N, ... in sorted
order and writes OUT_DIR/part-RRRRR-of-NNNNN.jsonl.zst, then its
.stats.json, then its .done marker; a completed task is skipped on re-run,
and a re-run with other settings, input folder or entries is refused.

Example: prolong-data repos data/repos --out data/docs/code --dedup-files"#;

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
