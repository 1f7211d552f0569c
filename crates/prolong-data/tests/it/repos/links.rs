//! Redirected git folders, git config and environment, and links: never followed.

use super::*;

/// A repository outside the input folder: its content must never appear in
/// the output.
fn outside_repo(dir: &Path) -> Oid {
    let repo = Repository::init(dir).unwrap();
    commit(&repo, &[("s.py", b"SECRET=1\n", BLOB)])
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn redirected_git_dirs_are_skipped_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside/s");
    let secret = outside_repo(&outside);
    let out_git = outside.join(".git");
    let root = tmp.path().join("in");
    std::fs::create_dir_all(&root).unwrap();
    let own = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("own.py"), "x=1\n").unwrap();
        dir
    };
    // A `.git` file (as in worktrees and submodule checkouts) and a `.git` link.
    let dir = own("a-gitdir-file");
    std::fs::write(dir.join(".git"), format!("gitdir: {}\n", out_git.display())).unwrap();
    let dir = own("b-git-link");
    symlink(&out_git, &dir.join(".git"));
    // Alternates, in a repository with a working tree and in a bare one.
    let dir = own("c-alternates");
    Repository::init(&dir).unwrap();
    let info = dir.join(".git/objects/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(
        info.join("alternates"),
        format!("{}\n", out_git.join("objects").display()),
    )
    .unwrap();
    set_head(&dir.join(".git"), secret);
    let dir = root.join("d-bare-alternates.git");
    Repository::init_bare(&dir).unwrap();
    std::fs::create_dir_all(dir.join("objects/info")).unwrap();
    std::fs::write(
        dir.join("objects/info/alternates"),
        format!("# comment\n{}\n", out_git.join("objects").display()),
    )
    .unwrap();
    set_head(&dir, secret);
    // commondir (a linked worktree's admin folder).
    let dir = own("e-commondir");
    Repository::init(&dir).unwrap();
    std::fs::write(
        dir.join(".git/commondir"),
        format!("{}\n", out_git.display()),
    )
    .unwrap();
    // The object folder, or its XX/ folders, linked to the outside's.
    let dir = own("f-objects-link");
    Repository::init(&dir).unwrap();
    std::fs::remove_dir_all(dir.join(".git/objects")).unwrap();
    symlink(&out_git.join("objects"), &dir.join(".git/objects"));
    set_head(&dir.join(".git"), secret);
    let dir = own("g-object-dirs-linked");
    Repository::init(&dir).unwrap();
    for entry in std::fs::read_dir(out_git.join("objects")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().len() == 2 {
            symlink(
                &entry.path(),
                &dir.join(".git/objects").join(entry.file_name()),
            );
        }
    }
    set_head(&dir.join(".git"), secret);
    // refs/heads and HEAD linked.
    let dir = own("h-refs-link");
    Repository::init(&dir).unwrap();
    std::fs::remove_dir_all(dir.join(".git/refs/heads")).unwrap();
    symlink(&out_git.join("refs/heads"), &dir.join(".git/refs/heads"));
    let dir = own("i-head-link");
    Repository::init(&dir).unwrap();
    std::fs::remove_file(dir.join(".git/HEAD")).unwrap();
    symlink(&out_git.join("HEAD"), &dir.join(".git/HEAD"));
    // And one repository of its own, which is read.
    small_repo(&root.join("z-own"));

    let out = tmp.path().join("out");
    let report = run_task(&root, &out, &ReposOptions::default(), 0, 1, &mut |_| {}).unwrap();
    let docs = read_docs(&report.part);
    assert_eq!(ids(&docs), ["z-own"]);
    assert_eq!(docs[0].text, SMALL_TEXT);
    let skipped: BTreeMap<String, u64> = [("redirected_git_dir".to_string(), 9)].into();
    assert_eq!(report.stats.repos_skipped, skipped);
    assert!(
        report
            .stats
            .problems
            .iter()
            .all(|p| p.reason == "redirected_git_dir" && !p.error.is_empty())
    );
    let mut raw = String::new();
    zstd::stream::read::Decoder::new(std::fs::File::open(&report.part).unwrap())
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    assert!(!raw.contains("SECRET"), "{raw}");
}

#[test]
fn git_config_and_environment_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside/s");
    outside_repo(&outside);
    let out_git = outside.join(".git");
    let root = tmp.path().join("in");
    small_repo(&root.join("own"));
    // Unparsable user and XDG git config, and every variable that would
    // send git elsewhere.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("xdg/git")).unwrap();
    std::fs::write(home.join(".gitconfig"), "[core\n").unwrap();
    std::fs::write(home.join("xdg/git/config"), "[core\n").unwrap();
    let run = |out: &Path, hostile: bool| {
        let mut cmd = common::cli();
        cmd.arg("repos").arg(&root).arg("--out").arg(out);
        if hostile {
            let objects = out_git.join("objects");
            cmd.env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join("xdg"))
                .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
                .env("GIT_CONFIG_SYSTEM", home.join(".gitconfig"))
                .env("GIT_DIR", &out_git)
                .env("GIT_COMMON_DIR", &out_git)
                .env("GIT_OBJECT_DIRECTORY", &objects)
                .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &objects)
                .env("GIT_WORK_TREE", &outside);
        }
        common::succeeded(cmd.output().unwrap());
        read_docs(&part_path(out, 0, 1))
    };
    let plain = run(&tmp.path().join("plain"), false);
    let hostile = run(&tmp.path().join("hostile"), true);
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].text, SMALL_TEXT);
    assert_eq!(hostile, plain);
}

#[test]
fn folder_links_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_files(
        tmp.path(),
        [
            ("outside/ignore-all", "*.py\n"),
            ("outside/secret.py", "SECRET = 1\n"),
            ("folder/a.py", "A = 1\n"),
            ("folder/pkg/b.py", "B = 2\n"),
        ],
    );
    let (outside, dir) = (tmp.path().join("outside"), tmp.path().join("folder"));
    // A linked .gitignore is not read; a linked folder is not entered.
    symlink(&outside.join("ignore-all"), &dir.join(".gitignore"));
    symlink(&outside.join("ignore-all"), &dir.join("pkg/.gitignore"));
    symlink(&outside, &dir.join("linked"));
    let doc = read_repository(&dir, &ReposOptions::default(), None)
        .outcome
        .unwrap();
    assert_eq!(doc.text, "==> a.py <==\nA = 1\n\n==> pkg/b.py <==\nB = 2\n");
    assert_eq!(doc.metadata.skipped, [("symlink".to_string(), 3)].into());
}
