//! Stage recipes: the shipped pipelines parse with the recipe's numbers; bad recipes fail
//! with one clear line.

#[path = "train_util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use prolong_train::stage::StageConfig;

fn pipelines() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pipelines")
}

fn parse(name: &str) -> StageConfig {
    let path = pipelines().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    StageConfig::parse(&text, &path).unwrap()
}

#[test]
fn shipped_pipelines_carry_the_recipe_numbers() {
    let s1 = parse("stage1-64k.toml");
    assert_eq!(s1.data.seq_len, 65536);
    assert_eq!(s1.train.steps, 5000);
    assert_eq!(s1.train.tokens_per_step, 4 * 1024 * 1024);
    assert_eq!(s1.micro_batches(), 64);
    assert_eq!(s1.train.peak_lr, 1e-5);
    assert_eq!(s1.train.warmup, 0.1);
    assert_eq!(s1.model.rope_theta, Some(8e6));
    assert_eq!(
        (s1.train.beta1, s1.train.beta2, s1.train.eps),
        (0.9, 0.95, 1e-8)
    );
    assert_eq!(
        (s1.train.weight_decay, s1.train.clip, s1.train.min_lr_ratio),
        (0.1, 1.0, 0.1)
    );

    let s2 = parse("stage2-512k.toml");
    assert_eq!(s2.data.seq_len, 524288);
    assert_eq!(s2.train.steps, 2500);
    assert_eq!(s2.micro_batches(), 16);
    assert_eq!(s2.train.peak_lr, 5e-6);
    assert_eq!(s2.model.rope_theta, Some(1.28e8));
    assert!(s2.model.keep_optimizer);
    assert_eq!(
        s2.model.init.as_deref(),
        Some(Path::new("runs/stage1-64k/final"))
    );

    let sft = parse("sft.toml");
    assert_eq!(sft.train.steps, 250);
    assert_eq!(sft.micro_batches(), 64);
    assert_eq!(sft.train.peak_lr, 2e-5);
    assert_eq!(sft.train.warmup, 0.05);
    assert_eq!(sft.model.rope_theta, None);

    for name in ["tiny-stage1.toml", "tiny-stage2.toml"] {
        let t = parse(name);
        assert_eq!(t.train.tokens_per_step % t.data.seq_len as u64, 0, "{name}");
    }
    // The tiny stage 1 needs no files to validate (random init).
    let path = pipelines().join("tiny-stage1.toml");
    parse("tiny-stage1.toml").validate(&path).unwrap();
}

fn base() -> String {
    util::recipe(Path::new("data"), Path::new("out"), 64, 2, 10, 5, 64, 1e-3)
}

fn error_of(text: &str) -> String {
    let path = Path::new("recipe.toml");
    match StageConfig::parse(text, path).and_then(|c| c.validate(path).map(|_| c)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn base_recipe_is_valid() {
    let path = Path::new("recipe.toml");
    StageConfig::parse(&base(), path)
        .unwrap()
        .validate(path)
        .unwrap();
}

#[test]
fn unknown_key_is_one_clear_error() {
    let text = base().replace("peak_lr =", "learning_rate = 1\npeak_lr =");
    let e = error_of(&text);
    assert!(e.contains("unknown field `learning_rate`"), "{e}");
    assert!(e.starts_with("recipe.toml:"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    let e = error_of(&base().replace("[checkpoint]", "[checkpoints]"));
    assert!(e.contains("unknown field `checkpoints`"), "{e}");
}

#[test]
fn heads_must_divide_hidden() {
    let e = error_of(&base().replace("heads = 4\n", "heads = 5\n"));
    assert!(
        e.contains("num_attention_heads (5) does not divide hidden_size (32)"),
        "{e}"
    );
    let e = error_of(&base().replace("kv_heads = 2", "kv_heads = 3"));
    assert!(e.contains("num_key_value_heads (3) does not divide"), "{e}");
}

#[test]
fn tokens_per_step_must_be_a_multiple_of_seq_len() {
    let e = error_of(&base().replace("tokens_per_step = 128", "tokens_per_step = 100"));
    assert!(
        e.contains("train.tokens_per_step (100) must be a positive multiple of data.seq_len (64)"),
        "{e}"
    );
}

#[test]
fn other_recipe_errors() {
    let both = base().replace("[model]\n", "[model]\ninit = \"x\"\n");
    assert!(error_of(&both).contains("both `init` and `random`"));
    let e = error_of(&base().replace("warmup = 0.1", "warmup = 1.5"));
    assert!(e.contains("train.warmup (1.5)"), "{e}");
    let e = error_of(&base().replace("[model]\n", "[model]\ndtype = \"f16\"\n"));
    assert!(e.contains("model.dtype `f16`"), "{e}");
    let e = error_of(&base().replace("steps = 10", "steps = 0"));
    assert!(e.contains("train.steps must be positive"), "{e}");
    let e = error_of(&base().replace("peak_lr = 0.001", "peak_lr = \"high\""));
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn shard_size_and_eval_settings() {
    let path = Path::new("recipe.toml");
    let with = |extra: &str| {
        let c = StageConfig::parse(&(base() + extra), path).unwrap();
        c.validate(path).unwrap();
        c
    };
    assert_eq!(with("").checkpoint.max_shard_bytes(), Some(5_000_000_000));
    for (size, bytes) in [
        ("\"500MB\"", 500_000_000),
        ("\"2GiB\"", 2 << 30),
        ("\"1.5 kb\"", 1500),
        ("\"4096\"", 4096),
    ] {
        let c = with(&format!("max_shard_size = {size}\n"));
        assert_eq!(c.checkpoint.max_shard_bytes(), Some(bytes), "{size}");
    }
    for bad in ["\"5 parsecs\"", "\"\"", "\"0GB\"", "\"-1GB\""] {
        let e = error_of(&(base() + &format!("max_shard_size = {bad}\n")));
        assert!(e.contains("checkpoint.max_shard_size"), "{bad}: {e}");
    }
    let c = with("\n[eval]\nsequences = 4\nevery = 2\n");
    let eval = c.eval.unwrap();
    assert_eq!((eval.sequences, eval.every, eval.seed), (4, 2, 0));
    let e = error_of(&(base() + "\n[eval]\nsequences = 0\n"));
    assert!(e.contains("eval.sequences must be positive"), "{e}");
    let e = error_of(&(base() + "\n[eval]\nsequences = 2\nsteps = 3\n"));
    assert!(e.contains("unknown field `steps`"), "{e}");
}

/// The binary: a bad recipe and a sequence length that does not match the shards each
/// give exit code 1 and one line on stderr, before any training.
#[test]
fn cli_reports_recipe_and_data_errors_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &util::random_samples(4, 32, 64, 1));
    let out = tmp.path().join("out");
    let good = util::recipe(&data, &out, 32, 1, 2, 0, 64, 1e-3);
    for (text, want) in [
        (
            good.replace("seed = 3", "seed = 3\nbatch = 4"),
            "unknown field `batch`",
        ),
        (
            good.replace("seq_len = 32", "seq_len = 64")
                .replace("tokens_per_step = 32", "tokens_per_step = 64"),
            "input_ids has 32 tokens, the configured sequence length is 64",
        ),
        (
            good.replace("hidden = 32", "hidden = 30"),
            "does not divide hidden_size",
        ),
    ] {
        let cfg = util::write(&tmp.path().join("r.toml"), &text);
        let o = Command::new(util::bin())
            .args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.starts_with("error: ") && err.trim_end().lines().count() == 1,
            "{err}"
        );
        assert!(err.contains(want), "{err}");
        assert!(!out.join("final").exists());
    }
}
