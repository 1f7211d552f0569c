//! Limits on the tree walk, through the library, the CLI and recipes; missing objects.

use super::*;

/// Commits `tree` on HEAD of `repo`.
fn commit_tree(repo: &Repository, tree: Oid) -> Oid {
    let tree = repo.find_tree(tree).unwrap();
    let sig = Signature::new("t", "t@example.com", &Time::new(1_700_000_000, 0)).unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "tree", &tree, &[])
        .unwrap()
}

/// A bare repository whose HEAD tree names one subtree `width` times per
/// level: `width^levels` paths from a few KB of objects.
fn tree_bomb(dir: &Path, width: usize, levels: usize) {
    let repo = Repository::init_bare(dir).unwrap();
    let blob = repo.blob(b"x=1\n").unwrap();
    let mut builder = repo.treebuilder(None).unwrap();
    for i in 0..width {
        builder.insert(format!("f{i}.py"), blob, BLOB).unwrap();
    }
    let mut tree = builder.write().unwrap();
    for _ in 1..levels {
        let mut builder = repo.treebuilder(None).unwrap();
        for i in 0..width {
            builder.insert(format!("d{i}"), tree, 0o040000).unwrap();
        }
        tree = builder.write().unwrap();
    }
    commit_tree(&repo, tree);
}

/// A repository holding one file `depth` folders deep.
fn deep_repo(dir: &Path, depth: usize) {
    let repo = Repository::init_bare(dir).unwrap();
    let mut builder = repo.treebuilder(None).unwrap();
    builder
        .insert("deep.py", repo.blob(b"D = 1\n").unwrap(), BLOB)
        .unwrap();
    let mut tree = builder.write().unwrap();
    for _ in 0..depth {
        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("d", tree, 0o040000).unwrap();
        tree = builder.write().unwrap();
    }
    commit_tree(&repo, tree);
}

fn outcome(dir: &Path, options: &ReposOptions) -> Result<u64, String> {
    read_repository(dir, options, None)
        .outcome
        .map(|doc| doc.metadata.files)
        .map_err(|skip| skip.to_string())
}

#[test]
fn limits_skip_repositories_while_the_tree_is_walked() {
    let tmp = tempfile::tempdir().unwrap();
    let with = |edit: &dyn Fn(&mut ReposOptions)| {
        let mut options = ReposOptions::default();
        edit(&mut options);
        options
    };
    let limit = |n: u64| with(&|o| o.max_files = n);
    let depth = |n: u64| with(&|o| o.max_depth = n);
    let bytes = |n: u64| with(&|o| o.max_repo_bytes = n);
    // 10^9 paths from 9 trees and a blob: the walk must stop at the limit
    // (a walk that listed the paths first would never end).
    let bomb = tmp.path().join("bomb");
    tree_bomb(&bomb, 10, 9);
    assert_eq!(outcome(&bomb, &limit(1000)), Err("too_many_files".into()));
    // Within the limit, the same kind of tree is read: 10 + 100 + 1000 entries.
    let little = tmp.path().join("little");
    tree_bomb(&little, 10, 3);
    assert_eq!(outcome(&little, &limit(1110)), Ok(1000));
    assert_eq!(outcome(&little, &limit(1109)), Err("too_many_files".into()));

    let deep = tmp.path().join("deep");
    deep_repo(&deep, 150);
    assert_eq!(
        outcome(&deep, &ReposOptions::default()),
        Err("too_deep".into())
    );
    assert_eq!(outcome(&deep, &depth(151)), Ok(1));
    assert_eq!(outcome(&deep, &depth(150)), Err("too_deep".into()));

    // Total bytes: small_repo reads 13 + 14 bytes.
    let repo = tmp.path().join("small");
    small_repo(&repo);
    assert_eq!(outcome(&repo, &bytes(27)), Ok(2));
    assert_eq!(outcome(&repo, &bytes(26)), Err("too_large".into()));

    // Plain folders: every entry counts, a folder too.
    let folder = tmp.path().join("folder");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    for i in 0..10 {
        std::fs::write(folder.join(format!("sub/f{i}.py")), format!("F = {i}\n")).unwrap();
    }
    assert_eq!(outcome(&folder, &limit(11)), Ok(10));
    assert_eq!(outcome(&folder, &limit(10)), Err("too_many_files".into()));
    assert_eq!(outcome(&folder, &depth(1)), Err("too_deep".into()));
    assert_eq!(outcome(&folder, &bytes(59)), Err("too_large".into()));
}

#[test]
fn limits_through_cli_and_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    tree_bomb(&root.join("bomb"), 10, 9);
    small_repo(&root.join("small"));
    let out = tmp.path().join("cli");
    let output = common::succeeded(
        common::cli()
            .arg("repos")
            .arg(&root)
            .arg("--out")
            .arg(&out)
            .args(["--max-files", "500", "--max-depth", "20", "--json"])
            .args(["--max-repo-bytes", "1000000"])
            .output()
            .unwrap(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stats = &summary["stats"];
    assert_eq!(stats["repos_out"], 1);
    assert_eq!(
        stats["repos_skipped"],
        serde_json::json!({"too_many_files": 1})
    );
    assert_eq!(stats["options"]["max_files"], 500);
    assert_eq!(stats["options"]["max_depth"], 20);
    assert_eq!(stats["options"]["max_repo_bytes"], 1_000_000);

    let recipe = tmp.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        "[[step]]\nname = \"repos\"\nstage = \"repos\"\ninput = \"in\"\nout = \"recipe-out\"\n\
         max_files = 12\nmax_depth = 20\nmax_repo_bytes = 26\n",
    )
    .unwrap();
    common::succeeded(common::cli().arg("run").arg(&recipe).output().unwrap());
    let stats: serde_json::Value = serde_json::from_slice(
        &std::fs::read(stats_path(&tmp.path().join("recipe-out"), 0, 1)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        stats["repos_skipped"],
        serde_json::json!({"too_large": 1, "too_many_files": 1})
    );
    assert_eq!(stats["options"]["max_files"], 12);
    assert_eq!(stats["options"]["max_depth"], 20);
}

#[test]
fn a_missing_blob_skips_its_file_a_missing_tree_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8], i32); 4] = [
        ("a.rs", b"fn a() {}\n", BLOB),
        ("b/c.rs", b"fn c() {}\n", BLOB),
        ("b/d.rs", b"fn d() {}\n", BLOB),
        ("e.md", b"# E\n", BLOB),
    ];
    let loose = |dir: &Path, id: Oid| {
        let id = id.to_string();
        dir.join(".git/objects").join(&id[..2]).join(&id[2..])
    };
    // A partial clone: one blob absent.
    let dir = tmp.path().join("partial");
    let repo = Repository::init(&dir).unwrap();
    commit(&repo, &files);
    std::fs::remove_file(loose(&dir, repo.blob(b"fn c() {}\n").unwrap())).unwrap();
    let result = read_repository(&dir, &ReposOptions::default(), None);
    let doc = result.outcome.unwrap();
    assert_eq!(
        doc.text,
        "==> a.rs <==\nfn a() {}\n\n==> b/d.rs <==\nfn d() {}\n\n==> e.md <==\n# E\n"
    );
    assert_eq!(
        doc.metadata.skipped,
        [("missing_object".to_string(), 1)].into()
    );
    assert_eq!(result.problems.len(), 1);
    assert_eq!(result.problems[0].path.as_deref(), Some("b/c.rs"));

    // A tree absent: the repository is skipped.
    let dir = tmp.path().join("no-tree");
    let repo = Repository::init(&dir).unwrap();
    let head = commit(&repo, &files);
    let subtree = repo
        .find_commit(head)
        .unwrap()
        .tree()
        .unwrap()
        .get_name("b")
        .unwrap()
        .id();
    std::fs::remove_file(loose(&dir, subtree)).unwrap();
    let result = read_repository(&dir, &ReposOptions::default(), None);
    assert_eq!(result.outcome.unwrap_err().to_string(), "corrupt_git");
    assert_eq!(result.problems[0].path, None);
}
