//! Recipes (`prolong-data run`): every stage in order on tiny generated
//! inputs (SFT chat data too: chat-synth, chat, pack with the mask, mix),
//! skipped on a re-run, one step redone after its marker is deleted; unknown
//! keys are errors with the file and line.

use crate::common;

use std::path::Path;
use std::process::Command;

use prolong_data::recipe::{Recipe, RecipeError, RunOptions, StepOutcome, run_recipe};
use prolong_data::task::TaskSpec;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prolong-data"))
}

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

fn run(recipe: &Recipe) -> Vec<(String, StepOutcome)> {
    let options = RunOptions {
        task: TaskSpec::new(0, 1).unwrap(),
        only: Vec::new(),
    };
    run_recipe(recipe, &options, &mut |_| {})
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.outcome))
        .collect()
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
    for d in [
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
    ] {
        prolong_mds::verify_with(&data.join(d), &prolong_packed::check_sample)
            .unwrap_or_else(|e| panic!("{d}: {e}"));
    }
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
    let options = RunOptions {
        task: TaskSpec::new(0, 2).unwrap(),
        only: Vec::new(),
    };
    let err = run_recipe(&recipe, &options, &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("step \"repos\" (repos): 1 of 2 tasks done"),
        "{msg}"
    );
    // Step by step, as the Slurm array chain does: every task of a step, then the next.
    for step in &recipe.steps {
        for rank in 0..2 {
            let options = RunOptions {
                task: TaskSpec::new(rank, 2).unwrap(),
                only: vec![step.name.clone()],
            };
            run_recipe(&recipe, &options, &mut |_| {})
                .unwrap_or_else(|e| panic!("{} rank {rank}: {e:#}", step.name));
        }
    }
    let data = tmp.path().join("data");
    for d in [
        "tok/code",
        "tok/book",
        "packed/code-1024",
        "packed/wiki-1024",
    ] {
        prolong_mds::verify_with(&data.join(d), &prolong_packed::check_sample)
            .unwrap_or_else(|e| panic!("{d}: {e}"));
    }
    assert!(data.join("mix/stage1.toml").is_file());
}

fn parse_err(text: &str) -> String {
    match Recipe::parse(text, Path::new("pipelines/x.toml")) {
        Err(e @ RecipeError::At { .. }) => e.to_string(),
        other => panic!("expected an error with a line, got {other:?}"),
    }
}

#[test]
fn unknown_and_misplaced_keys_name_the_file_and_line() {
    let base = "[[step]]\nname = \"a\"\nstage = \"pack\"\ninputs = [\"x\"]\nout = \"y\"\nlen = 8\n";
    let msg = parse_err(&format!("{base}lenght = 9\n"));
    assert!(msg.starts_with("pipelines/x.toml:7:"), "{msg}");
    assert!(msg.contains("unknown field `lenght`"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");

    let msg = parse_err(&format!("{base}min_tokens = 9\n"));
    assert!(msg.starts_with("pipelines/x.toml:7:"), "{msg}");
    assert!(
        msg.contains("`min_tokens` does not apply to stage pack"),
        "{msg}"
    );

    let msg = parse_err(&format!("bogus = 1\n{base}"));
    assert!(msg.starts_with("pipelines/x.toml:1:"), "{msg}");

    let msg = parse_err(&base.replace("pack", "packer"));
    assert!(msg.starts_with("pipelines/x.toml:3:"), "{msg}");

    let msg = parse_err(&base.replace("len = 8\n", ""));
    assert!(msg.contains("stage pack needs `len`"), "{msg}");

    // Through the binary: one line, non-zero.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    std::fs::write(&path, format!("{base}\nlenght = 9\n")).unwrap();
    let out = bin().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad.toml:8:"), "{stderr}");
}

/// Two steps writing one folder would skip or clobber each other's tasks.
#[test]
fn two_steps_with_the_same_out_are_an_error() {
    let step = |name: &str, out: &str| {
        format!(
            "[[step]]\nname = \"{name}\"\nstage = \"pack\"\ninputs = [\"x\"]\nout = \"{out}\"\nlen = 8\n"
        )
    };
    let msg = parse_err(&format!("{}{}", step("a", "y"), step("b", "y/")));
    assert!(msg.starts_with("pipelines/x.toml:11:"), "{msg}");
    assert!(
        msg.contains("steps \"a\" and \"b\" both write out = \"y/\""),
        "{msg}"
    );
    assert!(
        Recipe::parse(
            &format!("{}{}", step("a", "y"), step("b", "z")),
            Path::new("x.toml")
        )
        .is_ok()
    );
}

#[test]
fn variables_come_from_the_environment_then_vars() {
    let text = "[vars]\nA = \"from-vars\"\nB = \"${A}/b\"\n[[step]]\nname = \"m\"\nstage = \"mix\"\npreset = \"prolong-64k\"\nroot = \"${B}\"\nout = \"/abs/m.toml\"\n";
    let recipe = Recipe::parse(text, Path::new("/r/pipelines/x.toml")).unwrap();
    assert_eq!(recipe.expand("${B}").unwrap(), "from-vars/b");
    assert_eq!(
        recipe.path("${B}").unwrap(),
        Path::new("/r/pipelines/from-vars/b")
    );
    assert_eq!(
        recipe.path("/abs/m.toml").unwrap(),
        Path::new("/abs/m.toml")
    );
    assert!(recipe.expand("${PROLONG_SURELY_UNSET_VAR}").is_err());
    let path = std::env::var("PATH").unwrap();
    assert_eq!(recipe.expand("${PATH}").unwrap(), path);
}

/// A recipe whose `V0` is `V1` repeated `wide` times, `V1` is `V2` repeated,
/// ... down to `V{deep}` = `leaf`; step `m` writes to `${V0}`.
fn exponential_vars(wide: usize, deep: usize, leaf: &str) -> String {
    let mut text = String::from("[vars]\n");
    for level in 0..deep {
        text += &format!(
            "V{level} = \"{}\"\n",
            format!("${{V{}}}", level + 1).repeat(wide)
        );
    }
    text += &format!("V{deep} = \"{leaf}\"\n");
    text + "[[step]]\nname = \"m\"\nstage = \"mix\"\npreset = \"prolong-64k\"\nroot = \"r\"\nout = \"${V0}\"\n"
}

#[test]
fn exponentially_repeating_variables_are_an_error_not_a_hang() {
    let path = Path::new("/r/pipelines/x.toml");
    // 10^6 copies of 10 bytes: 10 MB, past the bound on size.
    let recipe = Recipe::parse(&exponential_vars(10, 6, "xxxxxxxxxx"), path).unwrap();
    let err = recipe.expand("${V0}").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "/r/pipelines/x.toml: {:?} expands to more than 65536 bytes \
             (variables that repeat each other grow exponentially)",
            "${V3}".repeat(10)
        )
    );
    // Empty leaves take no room but 10^5 substitutions: past the bound on work.
    let recipe = Recipe::parse(&exponential_vars(10, 5, ""), path).unwrap();
    let err = recipe.expand("${V0}").unwrap_err().to_string();
    assert!(
        err.ends_with("takes more than 10000 substitutions (variables that repeat each other grow exponentially)"),
        "{err}"
    );
    // Within the bounds it expands.
    let recipe = Recipe::parse(&exponential_vars(4, 3, "ab"), path).unwrap();
    assert_eq!(recipe.expand("${V0}").unwrap(), "ab".repeat(64));

    // The reported case, ten wide and twelve deep, through `run --list`: it
    // aborted after 15 s.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bomb.toml");
    std::fs::write(&file, exponential_vars(10, 12, "x")).unwrap();
    let out = bin().arg("run").arg(&file).arg("--list").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bomb.toml") && stderr.contains("grow exponentially"),
        "{stderr}"
    );
}

#[test]
fn the_pipelines_recipes_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
    for (name, steps) in [
        ("corpus.toml", 23),
        ("prolong-64k.toml", 22),
        ("prolong-512k.toml", 10),
    ] {
        let recipe = Recipe::load(&root.join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(recipe.steps.len(), steps, "{name}");
        for step in &recipe.steps {
            recipe
                .path(&step.out().to_string_lossy())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
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
    let options = RunOptions {
        task: TaskSpec::new(0, 1).unwrap(),
        only: vec!["chat".into()],
    };
    let err = run_recipe(&Recipe::load(&path).unwrap(), &options, &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("step \"chat\" (chat): "), "{msg}");

    // A pack setting changed: the step is an error naming it.
    let edited = text.replace("len = 1024\nbos = 1", "len = 512\nbos = 1");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let recipe = Recipe::load(&path).unwrap();
    let options = RunOptions {
        task: TaskSpec::new(0, 1).unwrap(),
        only: Vec::new(),
    };
    let err = run_recipe(&recipe, &options, &mut |_| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("step \"pack-code\" (pack): "), "{msg}");
}

/// schemas/recipe.schema.json is generated from the stages' options types:
/// the committed file is `prolong-data schema`'s output. Regenerate it with
/// `prolong-data schema > schemas/recipe.schema.json` (or run this test with
/// PROLONG_WRITE_SCHEMA=1).
#[test]
fn the_committed_recipe_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/recipe.schema.json");
    let generated = prolong_data::recipe::recipe_schema_text().unwrap();
    if std::env::var_os("PROLONG_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "schemas/recipe.schema.json is not the generated schema: run \
         `prolong-data schema > schemas/recipe.schema.json`"
    );
    let out = bin().arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// The subcommand names in `--help`'s command list.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description's wrapped lines are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// One list of stages: the registry, the CLI's subcommands, the schema's step
/// kinds, `run --help` and docs/adding-a-stage.md name the same stages; a
/// key that a stage takes on the command line and in a recipe has one
/// default in both.
#[test]
fn stages_agree_across_registry_cli_schema_and_docs() {
    use prolong_data::stage::STAGES;
    let registered: Vec<&str> = STAGES.iter().map(|s| s.name).collect();

    let help = String::from_utf8(bin().arg("--help").output().unwrap().stdout).unwrap();
    let tools = [
        "inspect", "verify", "merge", "run", "stats", "schema", "help",
    ];
    let mut cli: Vec<String> = subcommands(&help)
        .into_iter()
        .filter(|c| !tools.contains(&c.as_str()))
        .collect();
    let mut sorted = registered.clone();
    sorted.sort();
    cli.sort();
    assert_eq!(cli, sorted, "CLI subcommands that are not tools: {help}");

    let schema = prolong_data::recipe::recipe_schema();
    let kinds: Vec<&str> = schema["properties"]["step"]["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["properties"]["stage"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, registered);

    let run_help =
        String::from_utf8(bin().args(["run", "--help"]).output().unwrap().stdout).unwrap();
    for name in &registered {
        assert!(run_help.contains(name), "run --help does not name {name}");
    }

    let page = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join("adding-a-stage.md");
    let docs = std::fs::read_to_string(page).unwrap();
    let documented: Vec<&str> = docs
        .lines()
        .skip_while(|l| !l.starts_with("## The stages"))
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(
        documented, registered,
        "docs/adding-a-stage.md, ## The stages"
    );

    for (info, kind) in STAGES.iter().zip(&kinds) {
        let keys = &schema["properties"]["step"]["items"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["properties"]["stage"]["const"] == *kind)
            .unwrap()["properties"];
        let mut command = (info.command)();
        // Built, flags show their implicit default ("false").
        command.build();
        for arg in command.get_arguments() {
            let Some(key) = keys.get(arg.get_id().as_str()) else {
                continue;
            };
            let cli_default: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let recipe_default: Vec<String> = match key.get("default") {
                None => Vec::new(),
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Array(a)) if a.is_empty() => Vec::new(),
                Some(other) => vec![other.to_string()],
            };
            assert_eq!(
                cli_default,
                recipe_default,
                "{}: `{}` has another default on the command line than in a recipe",
                info.name,
                arg.get_id()
            );
        }
    }
}
