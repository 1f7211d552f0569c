//! Whole runs: exact text, skip counts, dedup, options, reruns, sharding,
//! done markers and the CLI.

use super::*;

const FOLDER_TEXT: &str = "==> .env.example <==\nKEY=value\n\n==> .gitignore <==\n*.log\nbuild/\n\n\
==> app.py <==\nprint('hi')\n\n==> pkg/mod.py <==\nX = 1\n";

fn mixed_skips(duplicate: bool) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = [
        ("alphanumeric", 1),
        ("binary", 2),
        ("empty", 1),
        ("generated", 3),
        ("header_collision", 1),
        ("long_line", 1),
        ("mean_line_length", 1),
        ("submodule", 1),
        ("symlink", 1),
        ("too_large", 1),
        ("vendored", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if duplicate {
        m.insert("duplicate".to_string(), 1);
    }
    m
}

#[test]
fn small_repo_exact_text_from_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("small");
    small_repo(&dir);
    let result = read_repository(&dir, &ReposOptions::default(), None);
    let doc = result.outcome.unwrap();
    assert_eq!(doc.text, SMALL_TEXT);
    assert_eq!(doc.id, "small");
    assert_eq!(doc.source, "repos");
    assert_eq!(doc.metadata.repo, "small");
    assert_eq!(doc.metadata.kind, "git");
    assert_eq!(doc.metadata.files, 2);
    assert_eq!(doc.metadata.bytes, 13 + 14);
    assert!(doc.metadata.skipped.is_empty());
    let head = Repository::open(&dir).unwrap().head().unwrap().target();
    assert_eq!(doc.metadata.commit, head.map(|o| o.to_string()));
}

#[test]
fn whole_run_documents_and_skip_counts() {
    let input = input();
    let out = input.root.with_file_name("out");
    let options = ReposOptions::default();
    let report = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap();
    assert!(!report.skipped);
    assert_eq!(report.part, out.join("part-00000-of-00001.jsonl.zst"));
    let docs = read_docs(&report.part);
    assert_eq!(ids(&docs), ["a-small", "b-mixed", "c-bare.git", "d-folder"]);

    assert_eq!(docs[0].text, SMALL_TEXT);
    assert_eq!(
        docs[1].text,
        "==> dup.txt <==\nfn main() {}\n\n==> main.go <==\npackage main\n\nfunc main() {}\n"
    );
    assert_eq!(docs[1].metadata.skipped, mixed_skips(false));
    assert_eq!(docs[2].text, SMALL_TEXT);
    assert_eq!(docs[2].metadata.kind, "bare");
    assert_eq!(docs[3].text, FOLDER_TEXT);
    assert_eq!(docs[3].metadata.kind, "folder");
    assert_eq!(docs[3].metadata.commit, None);
    let folder_skips: BTreeMap<String, u64> =
        [("not_regular".to_string(), 1), ("symlink".to_string(), 2)].into();
    assert_eq!(docs[3].metadata.skipped, folder_skips);

    let s = &report.stats;
    assert_eq!((s.repos_in, s.repos_out), (8, 4));
    // f-corrupt's only blob is missing: that file is skipped, and with it
    // the repository has no file.
    let repos_skipped: BTreeMap<String, u64> = [
        ("corrupt_git".to_string(), 1),
        ("empty_folder".to_string(), 1),
        ("no_files".to_string(), 1),
        ("not_a_directory".to_string(), 1),
    ]
    .into();
    assert_eq!(s.repos_skipped, repos_skipped);
    assert_eq!(s.files_kept, 2 + 2 + 2 + 4);
    let problems: Vec<(&str, Option<&str>, &str)> = s
        .problems
        .iter()
        .map(|p| (p.repo.as_str(), p.path.as_deref(), p.reason.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            ("f-corrupt", Some("lost.rs"), "missing_object"),
            ("g-garbage", None, "corrupt_git")
        ]
    );
    assert!(s.problems.iter().all(|p| !p.error.is_empty()));
    let mut files_skipped = mixed_skips(false);
    *files_skipped.get_mut("symlink").unwrap() += 2;
    files_skipped.insert("not_regular".to_string(), 1);
    files_skipped.insert("missing_object".to_string(), 1);
    assert_eq!(s.files_skipped, files_skipped);

    // Stats and marker are written, and the stats parse back.
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stats_path(&out, 0, 1)).unwrap()).unwrap();
    assert_eq!(stats["repos_out"], 4);
    assert!(marker_path(&out, 0, 1).is_file());
    // No temporary file is left behind.
    let names = common::sorted_names(&out);
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn dedup_keeps_the_first_copy() {
    let input = input();
    let out = input.root.with_file_name("out");
    let options = ReposOptions {
        dedup_files: true,
        ..ReposOptions::default()
    };
    let report = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap();
    let docs = read_docs(&report.part);
    // The bare clone holds only copies of a-small's files.
    assert_eq!(ids(&docs), ["a-small", "b-mixed", "d-folder"]);
    assert_eq!(docs[0].text, SMALL_TEXT);
    assert_eq!(
        docs[1].text,
        "==> main.go <==\npackage main\n\nfunc main() {}\n"
    );
    assert_eq!(docs[1].metadata.skipped, mixed_skips(true));
    assert_eq!(report.stats.repos_skipped["no_files"], 2);
    assert_eq!(report.stats.files_skipped["duplicate"], 1 + 2);
}

#[test]
fn max_file_bytes_option() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("small");
    small_repo(&dir);
    let options = ReposOptions {
        max_file_bytes: 13,
        ..ReposOptions::default()
    };
    let doc = read_repository(&dir, &options, None).outcome.unwrap();
    assert_eq!(doc.text, "==> src/main.rs <==\nfn main() {}\n");
    assert_eq!(doc.metadata.skipped["too_large"], 1);
}

#[test]
fn reruns_are_byte_identical() {
    let input = input();
    let options = ReposOptions::default();
    let one = input.root.with_file_name("one");
    let two = input.root.with_file_name("two");
    run(&input.root, &one, &options, 0, 1);
    run(&input.root, &two, &options, 0, 1);
    for path in [part_path, stats_path, marker_path] {
        let a = std::fs::read(path(&one, 0, 1)).unwrap();
        let b = std::fs::read(path(&two, 0, 1)).unwrap();
        assert!(a == b, "{} differs", path(&one, 0, 1).display());
    }
}

#[test]
fn sharding_by_rank() {
    let input = input();
    let options = ReposOptions::default();
    let out = input.root.with_file_name("sharded");
    let mut all = Vec::new();
    for rank in 0..3 {
        let report = run_task(&input.root, &out, &options, rank, 3, &mut |_| {}).unwrap();
        assert_eq!(
            report.part,
            out.join(format!("part-{rank:05}-of-00003.jsonl.zst"))
        );
        assert!(marker_path(&out, rank, 3).is_file());
        let ids: Vec<String> = read_docs(&report.part).into_iter().map(|d| d.id).collect();
        all.push(ids);
    }
    // Sorted entries: a-small b-mixed c-bare.git d-folder e-empty f-corrupt g-garbage z-file.txt
    assert_eq!(all[0], ["a-small", "d-folder"]);
    assert_eq!(all[1], ["b-mixed"]);
    assert_eq!(all[2], ["c-bare.git"]);
    let err = run_task(&input.root, &out, &options, 3, 3, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ReposError::Settings(_)), "{err}");
}

/// [`input`] after a whole run with the default settings, its output folder and
/// the bytes of the part that run wrote.
fn completed() -> (Input, PathBuf, Vec<u8>) {
    let input = input();
    let out = input.root.with_file_name("out");
    run(&input.root, &out, &ReposOptions::default(), 0, 1);
    let first = std::fs::read(part_path(&out, 0, 1)).unwrap();
    (input, out, first)
}

#[test]
fn done_tasks_are_skipped_and_missing_done_redoes() {
    let (input, out, first) = completed();
    let options = ReposOptions::default();

    // Completed: not redone.
    let report = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap();
    assert!(report.skipped);
    assert_eq!(report.stats.repos_out, 4);
    assert_eq!(std::fs::read(part_path(&out, 0, 1)).unwrap(), first);

    // Other settings, another input folder, other entries: refused, with
    // one line naming what changed and how to start afresh.
    let refused = |input: &Path, options: &ReposOptions| {
        let err = run_task(input, &out, options, 0, 1, &mut |_| {}).unwrap_err();
        assert!(matches!(err, ReposError::Changed { .. }), "{err}");
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("use a fresh output folder"), "{line}");
        line
    };
    let other = ReposOptions {
        dedup_files: true,
        max_files: 7,
        ..ReposOptions::default()
    };
    let line = refused(&input.root, &other);
    assert!(
        line.contains("max_files 1000000 then, 7 now")
            && line.contains("dedup_files false then, true now"),
        "{line}"
    );
    let elsewhere = input.root.with_file_name("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let line = refused(&elsewhere, &options);
    assert!(line.contains("elsewhere"), "{line}");
    std::fs::remove_dir_all(input.root.join("d-folder")).unwrap();
    let line = refused(&input.root, &options);
    assert!(
        line.contains("entries of the input folder differ (8 then, 7 now)"),
        "{line}"
    );
    assert_eq!(std::fs::read(part_path(&out, 0, 1)).unwrap(), first);

    // No marker (a killed run, with a stale temporary file of a process that is
    // gone): redone from scratch.
    std::fs::remove_file(marker_path(&out, 0, 1)).unwrap();
    std::fs::write(
        out.join(".part-00000-of-00001.jsonl.zst.tmp.999999999.0"),
        "junk",
    )
    .unwrap();
    let report = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap();
    assert!(!report.skipped);
    assert_eq!(report.stats.repos_out, 3);
    assert_eq!(read_docs(&report.part).len(), 3);
    assert!(marker_path(&out, 0, 1).is_file());
    assert!(
        !out.join(".part-00000-of-00001.jsonl.zst.tmp.999999999.0")
            .exists()
    );
}

/// A completed task notices a repository that got a new commit since: its
/// HEAD is part of what a rerun compares (the entries' names alone are not).
#[test]
fn a_new_commit_since_is_refused_on_rerun() {
    let (input, out, first) = completed();
    let options = ReposOptions::default();

    let dir = input.root.join("a-small");
    let repo = Repository::open(&dir).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = Signature::new("t", "t@example.com", &Time::new(1_700_000_100, 0)).unwrap();
    let next = repo
        .commit(None, &sig, &sig, "more", &head.tree().unwrap(), &[&head])
        .unwrap();
    set_head(&dir.join(".git"), next);
    let err = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap_err();
    assert!(matches!(err, ReposError::Changed { .. }), "{err}");
    assert!(
        err.to_string().contains("HEAD names another commit"),
        "{err}"
    );
    assert_eq!(std::fs::read(part_path(&out, 0, 1)).unwrap(), first);

    // Back to the commit it was made from: skipped as done again.
    set_head(&dir.join(".git"), head.id());
    let report = run_task(&input.root, &out, &options, 0, 1, &mut |_| {}).unwrap();
    assert!(report.skipped);
}

#[test]
fn cli_runs_and_prints_json() {
    let input = input();
    let out = input.root.with_file_name("cli-out");
    let output = common::succeeded(
        common::cli()
            .args(["repos"])
            .arg(&input.root)
            .arg("--out")
            .arg(&out)
            .args(["--dedup-files", "--json"])
            .output()
            .unwrap(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["stats"]["repos_out"], 3);
    assert_eq!(summary["already_done"], false);

    // SLURM variables give the task; the plain summary is one screen.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .args(["repos"])
        .arg(&input.root)
        .arg("--out")
        .arg(&out)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("part-00001-of-00002"), "{stdout}");
    assert!(stdout.lines().count() < 25, "{stdout}");
    assert!(out.join("part-00001-of-00002.done").is_file());
}
