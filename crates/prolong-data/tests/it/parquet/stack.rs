//! The Stack: rows grouped into one document per repository, through the CLI and recipes.

use super::*;

/// The Stack v1's shape (the columns grouping reads, and one it does not).
const STACK: &str = "message stack {
    OPTIONAL BYTE_ARRAY content (UTF8);
    OPTIONAL BYTE_ARRAY max_stars_repo_name (UTF8);
    OPTIONAL BYTE_ARRAY max_stars_repo_path (UTF8);
    OPTIONAL INT64 size;
}";

/// Two files of per-file rows: repositories spread over both files and out
/// of path order, a null text, a row without a repository, a second row of
/// one path, a file with a header-like line.
fn write_stack(dir: &Path) -> Vec<PathBuf> {
    type Row<'a> = (Option<&'a str>, Option<&'a str>, &'a str);
    let files: [Vec<Vec<Row>>; 2] = [
        vec![
            vec![
                (Some("fn b() {}"), Some("a/x"), "src/b.rs"),
                (Some("x = 1\n"), Some("c/z"), "main.py"),
            ],
            vec![
                (Some("# A\n"), Some("a/x"), "README.md"),
                (None, Some("a/x"), "gone.rs"),
                (Some("orphan\n"), None, "o.rs"),
            ],
        ],
        vec![vec![
            (Some("dup\n"), Some("a/x"), "src/b.rs"),
            (Some("==> evil <==\n"), Some("c/z"), "evil.txt"),
            (Some("y = 2\n"), Some("c/z"), "lib/util.py"),
            (Some("only\n"), Some("b/y"), "one.c"),
        ]],
    ];
    let mut paths = Vec::new();
    for (i, groups) in files.into_iter().enumerate() {
        let path = dir.join(format!("train-{i}.parquet"));
        let groups = groups
            .into_iter()
            .map(|rows| {
                vec![
                    Col::Str(rows.iter().map(|r| r.0.and_then(s)).collect()),
                    Col::Str(rows.iter().map(|r| r.1.and_then(s)).collect()),
                    Col::Str(rows.iter().map(|r| s(r.2)).collect()),
                    Col::I64(rows.iter().map(|r| Some(r.2.len() as i64)).collect()),
                ]
            })
            .collect();
        write_parquet(&path, STACK, groups, Compression::SNAPPY);
        paths.push(path);
    }
    paths
}

/// The documents of a tokenized dataset as text (the byte tokenizer's ids
/// are the bytes), sorted.
fn texts(dir: &Path) -> Vec<String> {
    let mut texts: Vec<String> = read_tokenized(dir)
        .into_iter()
        .map(|(_, ids)| String::from_utf8(ids.iter().map(|&b| b as u8).collect()).unwrap())
        .collect();
    texts.sort();
    texts
}

#[test]
fn stack_rows_become_one_document_per_repository_whatever_the_task_count() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_stack(tmp.path());
    let tok = byte_tokenizer(tmp.path());
    let options = TokenizeOptions {
        domain: "thestackv1_concat_by_repo".into(),
        fields: Fields {
            text: "content".into(),
            group: Some(GroupFields {
                repo: "max_stars_repo_name".into(),
                path: "max_stars_repo_path".into(),
            }),
            ..Fields::default()
        },
        ..Default::default()
    };
    let run = |out: &Path, world_size: usize| {
        (0..world_size)
            .map(|rank| {
                let task = TaskSpec::new(rank, world_size).unwrap();
                tokenize_task(&tok, &files, task.at(out), &options, &mut |_| {})
                    .unwrap()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let one = tmp.path().join("one");
    let stats = run(&one, 1).remove(0);
    let expected = [
        "==> README.md <==\n# A\n\n==> src/b.rs <==\nfn b() {}\n",
        "==> lib/util.py <==\ny = 2\n\n==> main.py <==\nx = 1\n",
        "==> one.c <==\nonly\n",
    ];
    assert_eq!(texts(&one), expected);
    let reasons = |stats: &[prolong_data::tokenize::stage::TokenizeStats]| {
        let mut all = std::collections::BTreeMap::new();
        for s in stats {
            for (reason, n) in &s.skipped.by_reason {
                *all.entry(reason.clone()).or_insert(0) += n;
            }
        }
        all.into_iter().collect::<Vec<(String, u64)>>()
    };
    let want: Vec<(String, u64)> = [
        "duplicate_path",
        "header_collision",
        "missing_group_field",
        "missing_text_field",
    ]
    .iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    assert_eq!(reasons(std::slice::from_ref(&stats)), want);
    assert_eq!((stats.documents_in, stats.documents_out), (7, 3));
    let second = files[1].display().to_string();
    assert!(
        stats.skipped.examples.contains(&format!(
            "{second}:1: duplicate_path (a/x src/b.rs: a second row of this path)"
        )),
        "{:?}",
        stats.skipped.examples
    );
    // No scratch left behind.
    let names = common::sorted_names(&one);
    assert!(!names.iter().any(|n| n.contains("groups")), "{names:?}");

    // Three tasks: every repository whole in one of them, skips counted once.
    let three = tmp.path().join("three");
    let parts = run(&three, 3);
    assert_eq!(texts(&three), expected);
    assert_eq!(reasons(&parts), want);
    assert_eq!(parts.iter().map(|p| p.documents_out).sum::<u64>(), 3);
}

#[test]
fn cli_groups_by_repository_and_recipes_name_the_options() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("stack");
    std::fs::create_dir(&input).unwrap();
    write_stack(&input);
    let tokenizer = write_byte_tokenizer(tmp.path());
    let out = tmp.path().join("out");
    common::succeeded(
        std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("tokenize")
            .arg(&input)
            .arg("--tokenizer")
            .arg(&tokenizer)
            .args([
                "--text-field",
                "content",
                "--repo-field",
                "max_stars_repo_name",
            ])
            .args(["--path-field", "max_stars_repo_path", "--json", "--out"])
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert_eq!(texts(&out).len(), 3);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    let recipe = prolong_data::recipe::Recipe::load(&root.join("prolong-64k.toml")).unwrap();
    let step = |name: &str| match &recipe.steps.iter().find(|s| s.name == name).unwrap().stage {
        prolong_data::stage::StepOptions::Tokenize(step) => step.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let group = step("tokenize-code").group_by_repo.clone().unwrap();
    assert_eq!(
        (group.repo.as_str(), group.path.as_str()),
        ("max_stars_repo_name", "max_stars_repo_path")
    );
    for (name, set) in [
        ("tokenize-book", "RedPajamaBook"),
        ("tokenize-stackexchange", "RedPajamaStackExchange"),
        ("tokenize-arxiv", "RedPajamaArXiv"),
    ] {
        let select = step(name).select.clone().unwrap();
        assert_eq!(select.field, "meta.redpajama_set_name");
        assert_eq!(select.values, [set]);
    }
}
