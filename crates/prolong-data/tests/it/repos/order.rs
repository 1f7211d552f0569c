//! Path order, dedup over any task count, HEAD forms, and killed runs.

use super::*;

#[test]
fn paths_come_in_byte_order_with_the_text_of_head() {
    // '-' < '.' < '/' < '0': a walk in name order would put a/b.rs before a.rs.
    let names = [
        "a/b.rs", "a.rs", "a-b.rs", "a0.rs", "ab/c.rs", "Z.rs", "a/b/c.rs",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let git = tmp.path().join("git");
    let repo = Repository::init(&git).unwrap();
    let contents: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), format!("// {n}\nfn f() {{}}\n")))
        .collect();
    let files: Vec<(&str, &[u8], i32)> = contents
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_bytes(), BLOB))
        .collect();
    commit(&repo, &files);
    let folder = tmp.path().join("folder");
    for (name, content) in &contents {
        let path = folder.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    // The text of each file as HEAD holds it (`git show HEAD:path`).
    let head = repo.head().unwrap().peel_to_tree().unwrap();
    let shown: Vec<String> = sorted
        .iter()
        .map(|p| {
            let blob = head
                .get_path(Path::new(p))
                .unwrap()
                .to_object(&repo)
                .unwrap();
            String::from_utf8(blob.as_blob().unwrap().content().to_vec()).unwrap()
        })
        .collect();
    let expected =
        prolong_data::repos::render(sorted.iter().zip(&shown).map(|(p, t)| (*p, t.as_str())));
    for dir in [&git, &folder] {
        let doc = read_repository(dir, &ReposOptions::default(), None)
            .outcome
            .unwrap();
        assert_eq!(doc.text, expected, "{}", dir.display());
    }
}

#[test]
fn dedup_keeps_the_same_files_on_any_number_of_tasks() {
    let input = input();
    // A plain folder holding a copy of a git blob (a-small's src/main.rs).
    let dup = input.root.join("h-folder-dup");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::write(dup.join("main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dup.join("other.py"), "Y = 2\n").unwrap();
    let options = ReposOptions {
        dedup_files: true,
        ..ReposOptions::default()
    };
    let mut runs = Vec::new();
    for world in 1..=3 {
        let out = input.root.with_file_name(format!("w{world}"));
        let mut docs = Vec::new();
        let mut duplicates = 0;
        for rank in 0..world {
            let report = run_task(&input.root, &out, &options, rank, world, &mut |_| {}).unwrap();
            docs.extend(read_docs(&report.part));
            duplicates += report
                .stats
                .files_skipped
                .get("duplicate")
                .copied()
                .unwrap_or(0);
        }
        // Merged in repository order.
        docs.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
        runs.push((docs, duplicates));
    }
    let (docs, duplicates) = &runs[0];
    assert_eq!(
        ids(docs),
        ["a-small", "b-mixed", "d-folder", "h-folder-dup"]
    );
    assert_eq!(docs[0].text, SMALL_TEXT);
    assert_eq!(
        docs[1].text,
        "==> main.go <==\npackage main\n\nfunc main() {}\n"
    );
    assert_eq!(docs[3].text, "==> other.py <==\nY = 2\n");
    // b-mixed's dup.txt, c-bare's two files, h-folder-dup's main.rs.
    assert_eq!(*duplicates, 4);
    for (world, run) in runs.iter().enumerate().skip(1) {
        assert!(run == &runs[0], "{} tasks keep other files", world + 1);
    }
}

#[test]
fn head_through_packed_refs_detached_and_unborn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("packed");
    small_repo(&dir);
    let git = dir.join(".git");
    let head = Repository::open(&dir)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap();
    let branch = std::fs::read_to_string(git.join("HEAD")).unwrap();
    let branch = branch.trim().strip_prefix("ref: ").unwrap().to_string();
    // As `git pack-refs --all` leaves it: the branch only in packed-refs.
    std::fs::remove_file(git.join(&branch)).unwrap();
    std::fs::write(
        git.join("packed-refs"),
        format!("# pack-refs with: peeled fully-peeled sorted\n{head} {branch}\n"),
    )
    .unwrap();
    let read = |dir: &Path| read_repository(dir, &ReposOptions::default(), None);
    let doc = read(&dir).outcome.unwrap();
    assert_eq!(doc.text, SMALL_TEXT);
    assert_eq!(doc.metadata.commit, Some(head.to_string()));
    // Detached.
    std::fs::write(git.join("HEAD"), format!("{head}\n")).unwrap();
    assert_eq!(read(&dir).outcome.unwrap().text, SMALL_TEXT);
    // A branch with no commit yet.
    std::fs::write(git.join("HEAD"), "ref: refs/heads/none\n").unwrap();
    assert_eq!(read(&dir).outcome.unwrap_err().to_string(), "no_commits");
    // A ref outside refs/.
    std::fs::write(git.join("HEAD"), "ref: ../../outside\n").unwrap();
    assert_eq!(read(&dir).outcome.unwrap_err().to_string(), "corrupt_git");
}

/// Repos writes three files per task (its part, stats and marker). A run of
/// three tasks over the input's eight entries (`--rank R --world-size 3
/// --dedup-files`, one after another as a job array's), each task killed at
/// each of its nine write steps after the earlier tasks finished, then all
/// re-run: the same bytes as an uninterrupted run, no temporary file left.
#[test]
fn killed_repos_then_rerun_is_byte_identical() {
    let input = input();
    let command = |out: &Path| {
        (0..3)
            .map(|rank| {
                let mut c = common::cli();
                c.arg("repos")
                    .arg(&input.root)
                    .arg("--out")
                    .arg(out)
                    .args(["--rank", &rank.to_string(), "--world-size", "3"])
                    .arg("--dedup-files");
                c
            })
            .collect()
    };
    let points =
        common::assert_kill_tasks_and_rerun_is_identical(command, input.root.parent().unwrap(), 10);
    assert_eq!(points, 27);
}
