//! Stage recipes: the shipped pipelines parse with the recipe's numbers; bad recipes fail
//! with one clear line.

use crate::train_util as util;

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

    // What ProLong ran on 8 GPUs: FSDP FULL_SHARD, and Ulysses SP 8 at 512K.
    use prolong_train::stage::ShardMode;
    assert_eq!(s1.parallel.shard, ShardMode::Full);
    assert_eq!(s1.parallel.sequence, 1);
    assert_eq!(
        (s2.parallel.shard, s2.parallel.sequence),
        (ShardMode::Full, 8)
    );

    let sft = parse("sft.toml");
    assert_eq!(sft.train.steps, 250);
    assert_eq!(sft.micro_batches(), 64);
    assert_eq!(sft.train.peak_lr, 2e-5);
    assert_eq!(sft.train.warmup, 0.05);
    assert_eq!(sft.model.rope_theta, None);
    assert_eq!(sft.parallel.shard, ShardMode::Full);

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

/// [`base`] with `from` replaced by `to` is refused with an error holding `want`.
fn refused_edit(from: &str, to: &str, want: &str) {
    let text = base().replace(from, to);
    assert_ne!(text, base(), "{from:?} is not in the base recipe");
    let e = error_of(&text);
    assert!(e.contains(want), "{e}");
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
    refused_edit(
        "[checkpoint]",
        "[checkpoints]",
        "unknown field `checkpoints`",
    );
}

#[test]
fn heads_must_divide_hidden() {
    refused_edit(
        "heads = 4\n",
        "heads = 5\n",
        "num_attention_heads (5) does not divide hidden_size (32)",
    );
    refused_edit(
        "kv_heads = 2",
        "kv_heads = 3",
        "num_key_value_heads (3) does not divide",
    );
}

#[test]
fn tokens_per_step_must_be_a_multiple_of_seq_len() {
    refused_edit(
        "tokens_per_step = 128",
        "tokens_per_step = 100",
        "train.tokens_per_step (100) must be a positive multiple of data.seq_len (64)",
    );
}

/// `[parallel] sequence`: Ulysses needs the sequence, the query heads and (one way or
/// the other) the kv heads to split over the group.
#[test]
fn sequence_parallel_layouts_that_cannot_split_are_errors() {
    let with = |text: String, sp: usize| format!("{text}\n[parallel]\nsequence = {sp}\n");
    let path = Path::new("recipe.toml");
    let ok = StageConfig::parse(&with(base(), 2), path).unwrap();
    ok.validate(path).unwrap();
    assert_eq!(ok.parallel.sequence, 2);
    // kv heads replicated: 2 kv heads over 4 ranks.
    let ok = StageConfig::parse(&with(base(), 4), path).unwrap();
    ok.validate(path).unwrap();
    let e = error_of(&with(base(), 3));
    assert!(
        e.contains("parallel.sequence (3) must be positive and divide data.seq_len (64)"),
        "{e}"
    );
    let e = error_of(&with(base(), 0));
    assert!(e.contains("parallel.sequence (0) must be positive"), "{e}");
    let e = error_of(&with(base(), 8));
    assert!(
        e.contains("parallel.sequence = 8: cannot split: 4 query heads over 8 ranks"),
        "{e}"
    );
    // 4 kv heads over 6 ranks: neither divides the other.
    let wide = util::recipe(Path::new("data"), Path::new("out"), 96, 1, 10, 5, 64, 1e-3)
        .replace("hidden = 32", "hidden = 48")
        .replace("heads = 4\nkv_heads = 2", "heads = 12\nkv_heads = 4");
    let e = error_of(&with(wide, 6));
    assert!(
        e.contains("4 kv heads over 6 ranks (one must divide the other)"),
        "{e}"
    );
    refused_edit(
        "[train]",
        "[parallel]\nseq = 2\n\n[train]",
        "unknown field `seq`",
    );
}

#[test]
fn other_recipe_errors() {
    let both = base().replace("[model]\n", "[model]\ninit = \"x\"\n");
    assert!(error_of(&both).contains("both `init` and `random`"));
    refused_edit("warmup = 0.1", "warmup = 1.5", "train.warmup (1.5)");
    let e = error_of(&base().replace("[model]\n", "[model]\ndtype = \"f16\"\n"));
    // An enum of the recipe: refused where it is parsed, with its line.
    assert!(e.contains("`f16`") && e.contains("`bf16`"), "{e}");
    refused_edit("steps = 10", "steps = 0", "train.steps must be positive");
    refused_edit("peak_lr = 0.001", "peak_lr = \"high\"", "invalid type");
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
    let (tmp, data, out) = util::temp_packed(&util::random_samples(4, 32, 64, 1));
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

/// `a/b/../c` → `a/c` (lexically; the paths need not exist).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Every recipe under pipelines/ reads only paths that a recipe writes (a data recipe's
/// step `out`, a stage's `checkpoint.out`/final) or that the README says to download.
/// Paths are taken relative to the repository root: a data recipe's relative to its file
/// (after `${VAR}` expansion from its `[vars]`), a stage's relative to the working
/// directory, the root.
#[test]
fn recipes_read_only_what_a_recipe_writes_or_the_readme_downloads() {
    let root = lexical(&pipelines().join(".."));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut written: Vec<PathBuf> = Vec::new();
    let mut reads: Vec<(String, PathBuf)> = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(pipelines())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        if let Some(steps) = v.get("step").and_then(|s| s.as_array()) {
            let vars = v
                .get("vars")
                .and_then(|t| t.as_table())
                .cloned()
                .unwrap_or_default();
            let expand = |s: &str| -> PathBuf {
                let mut s = s.to_string();
                for (k, val) in &vars {
                    s = s.replace(&format!("${{{k}}}"), val.as_str().unwrap());
                }
                assert!(!s.contains("${"), "{name}: unexpanded {s}");
                lexical(&pipelines().join(s))
            };
            for step in steps {
                if let Some(out) = step.get("out").and_then(|o| o.as_str()) {
                    written.push(expand(out));
                }
                let mut inputs: Vec<&str> = Vec::new();
                if let Some(a) = step.get("inputs").and_then(|a| a.as_array()) {
                    inputs.extend(a.iter().filter_map(|x| x.as_str()));
                }
                if let Some(a) = step.get("streams").and_then(|a| a.as_array()) {
                    inputs.extend(a.iter().filter_map(|x| x.get("path")?.as_str()));
                }
                for i in inputs {
                    reads.push((name.clone(), expand(i)));
                }
            }
        } else {
            let cfg = StageConfig::parse(&std::fs::read_to_string(file).unwrap(), file)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let at_root = |p: &Path| lexical(&root.join(p));
            written.push(at_root(&cfg.checkpoint.out.join("final")));
            if let Some(init) = &cfg.model.init {
                reads.push((name.clone(), at_root(init)));
            }
            if let Some(m) = &cfg.data.manifest {
                reads.push((name.clone(), at_root(m)));
            }
            for s in cfg.data.streams.iter().flatten() {
                let path = s.rsplit_once('@').map_or(s.as_str(), |(p, _)| p);
                reads.push((name.clone(), at_root(Path::new(path))));
            }
        }
    }
    let mut unmet = Vec::new();
    for (recipe, path) in &reads {
        let rel = path.strip_prefix(&root).unwrap_or(path);
        let ok = written.iter().any(|w| path.starts_with(w))
            || readme.contains(&rel.to_string_lossy().into_owned())
            || path.starts_with(root.join("fixtures"));
        if !ok {
            unmet.push(format!("{recipe}: {}", rel.display()));
        }
    }
    assert!(
        unmet.is_empty(),
        "read but never written nor downloaded:\n{}",
        unmet.join("\n")
    );
}

/// `[parallel] shard`: "none" (DDP) without the table, the three modes by name, and
/// anything else one clear error naming the line.
#[test]
fn parallel_shard_modes() {
    use prolong_train::stage::ShardMode;
    let path = Path::new("recipe.toml");
    assert_eq!(
        StageConfig::parse(&base(), path).unwrap().parallel.shard,
        ShardMode::None
    );
    for (name, mode) in [
        ("none", ShardMode::None),
        ("grad_op", ShardMode::GradOp),
        ("full", ShardMode::Full),
    ] {
        let text = format!("{}\n[parallel]\nshard = \"{name}\"\n", base());
        assert_eq!(
            StageConfig::parse(&text, path).unwrap().parallel.shard,
            mode
        );
    }
    let e = error_of(&format!("{}\n[parallel]\nshard = \"zero3\"\n", base()));
    assert!(e.contains("unknown variant `zero3`"), "{e}");
    assert!(e.starts_with("recipe.toml:"), "{e}");
    let e = error_of(&format!("{}\n[parallel]\nshards = \"full\"\n", base()));
    assert!(e.contains("unknown field `shards`"), "{e}");
}
