//! Running recipes: skips, reruns, sharded runs, edited steps.

use super::*;

/// Inputs: a repository folder, book texts, short JSONL, a byte tokenizer
/// with Llama-3's chat tokens (ids 256..=260); and the recipe.
fn setup(dir: &Path) -> std::path::PathBuf {
    let repos = dir.join("in/repos");
    for r in 0..3 {
        let repo = repos.join(format!("repo{r}"));
        std::fs::create_dir_all(repo.join("src")).unwrap();
        for f in 0..4 {
            let body: String = (0..40)
                .map(|l| format!("fn f{r}_{f}_{l}() -> u32 {{ {} }}\n", l * 7 + f))
                .collect();
            std::fs::write(repo.join(format!("src/m{f}.rs")), body).unwrap();
        }
    }
    let books = dir.join("in/books");
    std::fs::create_dir_all(&books).unwrap();
    for b in 0..3 {
        let text: String = (0..200 * (b + 1))
            .map(|i| format!("Line {i} of book {b}.\n"))
            .collect();
        std::fs::write(books.join(format!("book{b}.txt")), text).unwrap();
    }
    let short = dir.join("in/wiki.jsonl");
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"text\": \"Article {i}: {}\"}}\n",
                "word ".repeat(10 + i % 17)
            )
        })
        .collect();
    std::fs::write(&short, lines).unwrap();
    std::fs::write(dir.join("in/tokenizer.json"), common::chat_tokenizer_json()).unwrap();
    let recipe = dir.join("pipelines/test.toml");
    std::fs::create_dir_all(recipe.parent().unwrap()).unwrap();
    std::fs::write(
        &recipe,
        r#"
tokenizer = "${IN}/tokenizer.json"

[vars]
IN = "../in"
DATA = "../data"

[[step]]
name = "repos"
stage = "repos"
input = "${IN}/repos"
out = "${DATA}/repos"
dedup_files = true

[[step]]
name = "tokenize-code"
stage = "tokenize"
inputs = ["${DATA}/repos"]
out = "${DATA}/tok/code"
domain = "code"

[[step]]
name = "tokenize-book"
stage = "tokenize"
inputs = ["${IN}/books"]
out = "${DATA}/tok/book"
domain = "book"

[[step]]
name = "tokenize-wiki"
stage = "tokenize"
inputs = ["${IN}/wiki.jsonl"]
out = "${DATA}/tok/wiki"
domain = "wiki"

[[step]]
name = "chat-synth"
stage = "chat-synth"
texts = ["${IN}/books"]
conversations = 20
seed = 1
out = "${DATA}/chat/synth.jsonl.zst"

[[step]]
name = "chat"
stage = "chat"
inputs = ["${DATA}/chat/synth.jsonl.zst"]
out = "${DATA}/tok/chat"

[[step]]
name = "filter-book"
stage = "filter"
inputs = ["${DATA}/tok/book"]
out = "${DATA}/long/book"
min_tokens = 5000

[[step]]
name = "shortmix"
stage = "sample"
sources = [{ name = "wiki", path = "${DATA}/tok/wiki", share = 100 }]
tokens = 3000
out = "${DATA}/shortmix"

[[step]]
name = "pack-code"
stage = "pack"
inputs = ["${DATA}/tok/code"]
out = "${DATA}/packed/code-1024"
len = 1024
bos = 1
eos = 2

[[step]]
name = "pack-book"
stage = "pack"
inputs = ["${DATA}/long/book"]
out = "${DATA}/packed/book-1024"
len = 1024
bos = false
eos = 2

[[step]]
name = "pack-short"
stage = "pack"
inputs = ["${DATA}/shortmix/wiki"]
out = "${DATA}/packed/wiki-1024"
len = 1024

[[step]]
name = "pack-chat"
stage = "pack"
inputs = ["${DATA}/tok/chat"]
out = "${DATA}/packed/chat-1024"
len = 1024
bos = 256
eos = 257

[[step]]
name = "mix-sft"
stage = "mix"
streams = [{ name = "chat", path = "${DATA}/packed/chat-1024", proportion = 1.0 }]
out = "${DATA}/mix/sft.toml"

[[step]]
name = "mix"
stage = "mix"
streams = [
  { name = "code", path = "${DATA}/packed/code-1024", proportion = 0.3 },
  { name = "book", path = "${DATA}/packed/book-1024", proportion = 0.3 },
  { name = "wiki", path = "${DATA}/packed/wiki-1024", proportion = 0.4 },
]
out = "${DATA}/mix/stage1.toml"
"#,
    )
    .unwrap();
    recipe
}

#[test]
fn runs_every_step_then_skips_then_redoes_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = setup(tmp.path());
    let recipe = Recipe::load(&path).unwrap();
    let data = tmp.path().join("data");

    let first = run(&recipe);
    assert_eq!(first.len(), 14);
    for (name, outcome) in &first {
        assert!(
            matches!(outcome, StepOutcome::Ran(_)),
            "{name}: {outcome:?}"
        );
    }
    verify_packed(
        &data,
        &[
            "tok/code",
            "tok/book",
            "tok/wiki",
            "long/book",
            "shortmix/wiki",
            "packed/code-1024",
            "packed/book-1024",
            "packed/wiki-1024",
            "tok/chat",
            "packed/chat-1024",
        ],
    );
    // The SFT pack carries the chat mask: 1 somewhere, 0 on every BOS/EOS.
    let packed = prolong_mds::MdsDataset::open(data.join("packed/chat-1024")).unwrap();
    let mut trained = 0;
    for i in 0..packed.len() {
        let s = packed.get(i).unwrap();
        let ids = s.u32s("input_ids").unwrap();
        let mask = s.array("mask").unwrap().as_u8().unwrap().into_owned();
        for (&id, &m) in ids.iter().zip(&mask) {
            assert!(m == 0 || (id != 256 && id != 257), "BOS/EOS trained on");
            trained += u64::from(m);
        }
    }
    assert!(trained > 0);
    assert!(
        std::fs::read_to_string(data.join("mix/sft.toml"))
            .unwrap()
            .contains("proportion = 1.0")
    );
    let manifest = std::fs::read_to_string(data.join("mix/stage1.toml")).unwrap();
    assert!(
        manifest.contains("path = \"../packed/code-1024\""),
        "{manifest}"
    );
    let before = common::files(&data);

    let second = run(&recipe);
    for (name, outcome) in &second {
        assert_eq!(*outcome, StepOutcome::Skipped, "{name}");
    }
    assert_eq!(common::files(&data), before);

    std::fs::remove_file(data.join("tok/book/proc0-1.done")).unwrap();
    let third = run(&recipe);
    for (name, outcome) in &third {
        if name == "tokenize-book" {
            assert!(
                matches!(outcome, StepOutcome::Ran(_)),
                "{name}: {outcome:?}"
            );
        } else {
            assert_eq!(*outcome, StepOutcome::Skipped, "{name}");
        }
    }
    // Redone byte for byte.
    assert_eq!(common::files(&data), before);

    // The binary: one step, then everything skipped.
    let out = common::succeeded(
        bin()
            .arg("run")
            .arg(&path)
            .arg("--step")
            .arg("mix")
            .output()
            .unwrap(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== mix (mix) skipped"), "{stdout}");
}

#[test]
fn sharded_run_stops_after_a_step_with_tasks_left() {
    let tmp = tempfile::tempdir().unwrap();
    let path = setup(tmp.path());
    let recipe = Recipe::load(&path).unwrap();
    // Task 0 of 2: the first step runs its share, then the run stops.
    let err = run_recipe(&recipe, &options(0, 2, &[]), &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("step \"repos\" (repos): 1 of 2 tasks done"),
        "{msg}"
    );
    // Step by step, as the Slurm array chain does: every task of a step, then the next.
    for step in &recipe.steps {
        for rank in 0..2 {
            run_recipe(&recipe, &options(rank, 2, &[&step.name]), &mut |_| {})
                .unwrap_or_else(|e| panic!("{} rank {rank}: {e:#}", step.name));
        }
    }
    let data = tmp.path().join("data");
    verify_packed(
        &data,
        &[
            "tok/code",
            "tok/book",
            "packed/code-1024",
            "packed/wiki-1024",
        ],
    );
    assert!(data.join("mix/stage1.toml").is_file());
}

#[test]
fn an_edited_step_is_an_error_or_a_rewritten_manifest_not_stale_output() {
    let tmp = tempfile::tempdir().unwrap();
    let path = setup(tmp.path());
    run(&Recipe::load(&path).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();

    // A mix proportion changed: the manifest is rewritten, nothing else runs.
    std::fs::write(&path, text.replace("proportion = 0.4", "proportion = 0.5")).unwrap();
    let outcomes = run(&Recipe::load(&path).unwrap());
    for (name, outcome) in &outcomes {
        assert_eq!(
            matches!(outcome, StepOutcome::Ran(_)),
            name == "mix",
            "{name}"
        );
    }

    // A chat setting changed: the step is an error naming it.
    let edited = text.replace(
        "out = \"${DATA}/tok/chat\"",
        "out = \"${DATA}/tok/chat\"\ndomain = \"sft\"",
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let err = run_recipe(
        &Recipe::load(&path).unwrap(),
        &options(0, 1, &["chat"]),
        &mut |_| {},
    )
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("step \"chat\" (chat): "), "{msg}");

    // A pack setting changed: the step is an error naming it.
    let edited = text.replace("len = 1024\nbos = 1", "len = 512\nbos = 1");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let recipe = Recipe::load(&path).unwrap();
    let err = run_recipe(&recipe, &options(0, 1, &[]), &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("step \"pack-code\" (pack): "), "{msg}");
}
