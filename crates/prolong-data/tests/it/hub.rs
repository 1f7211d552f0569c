//! `source = { hf = ... }` inputs resolve to files of a local folder laid out
//! as the HF hub cache, offline (HF_HUB_OFFLINE=1): no network in tests.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use prolong_data::hub::{folder_name, resolve_cached};
use prolong_data::recipe::HubSource;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// HF_HOME/hub/datasets--org--tiny/{refs/main, blobs/, snapshots/COMMIT/...}
/// with the snapshot's files linked into blobs/ as huggingface_hub does.
fn hf_home(dir: &Path) -> PathBuf {
    let home = dir.join("hf-home");
    let repo = home.join("hub").join(folder_name("org/tiny"));
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(snapshot.join("data")).unwrap();
    std::fs::create_dir_all(snapshot.join("other")).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    for (i, name) in ["data/train-00000.jsonl", "data/train-00001.jsonl"]
        .iter()
        .enumerate()
    {
        let text: String = (0..5)
            .map(|k| format!("{{\"text\": \"doc {i}.{k} {}\"}}\n", "x".repeat(k + 1)))
            .collect();
        let blob = repo.join("blobs").join(format!("blob{i}"));
        std::fs::write(&blob, text).unwrap();
        std::os::unix::fs::symlink(&blob, snapshot.join(name)).unwrap();
    }
    std::fs::write(snapshot.join("other/readme.txt"), "not data").unwrap();
    std::fs::write(snapshot.join("data/notes.txt"), "not matched").unwrap();
    home
}

fn source(revision: &str, files: &[&str]) -> HubSource {
    HubSource {
        hf: "org/tiny".into(),
        revision: revision.into(),
        files: files.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn globs_resolve_in_the_cache_by_branch_or_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let home = hf_home(tmp.path());
    let cache = hf_hub::Cache::new(home.join("hub"));
    let snapshot = home.join("hub/datasets--org--tiny/snapshots").join(COMMIT);

    let files = resolve_cached(&cache, &source("main", &["data/*.jsonl"])).unwrap();
    assert_eq!(
        files,
        vec![
            snapshot.join("data/train-00000.jsonl"),
            snapshot.join("data/train-00001.jsonl")
        ]
    );
    // A commit hash needs no ref; `*` does not cross folders.
    let files = resolve_cached(&cache, &source(COMMIT, &["*/*.txt"])).unwrap();
    assert_eq!(
        files,
        vec![
            snapshot.join("data/notes.txt"),
            snapshot.join("other/readme.txt")
        ]
    );
    assert!(resolve_cached(&cache, &source("main", &["*.txt"])).is_err());

    let err = resolve_cached(&cache, &source("v2", &["data/*"])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("org/tiny@v2: not in the HF cache"), "{msg}");
    assert!(
        msg.contains("huggingface-cli download --repo-type dataset org/tiny"),
        "{msg}"
    );
    let err = resolve_cached(&cache, &source("main", &["nope/*"])).unwrap_err();
    assert!(err.to_string().contains("no file"), "{err}");
}

#[test]
fn a_recipe_tokenizes_a_cached_dataset_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let home = hf_home(tmp.path());
    let tokenizer = common::write_byte_tokenizer(tmp.path());
    let recipe = tmp.path().join("r.toml");
    std::fs::write(
        &recipe,
        format!(
            r#"tokenizer = "{}"

[[step]]
name = "tok"
stage = "tokenize"
source = {{ hf = "org/tiny", revision = "main", files = ["data/*.jsonl"] }}
out = "tok/tiny"
domain = "tiny"
"#,
            tokenizer.display()
        ),
    )
    .unwrap();
    let run = |home: &Path| {
        Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .arg("run")
            .arg(&recipe)
            .env("HF_HOME", home)
            .env_remove("HF_HUB_CACHE")
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let out = run(&tmp.path().join("empty-home"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("step \"tok\" (tokenize)"), "{stderr}");
    assert!(stderr.contains("HF_HUB_OFFLINE is set"), "{stderr}");

    common::succeeded(run(&home));
    let ds = prolong_mds::MdsDataset::open(tmp.path().join("tok/tiny")).unwrap();
    assert_eq!(ds.len(), 10);
    let first = ds.get(0).unwrap();
    assert_eq!(first.str("domain").unwrap(), "tiny");
    let ids = first.u32s("input_ids").unwrap();
    let text: String = ids.iter().map(|&b| b as u8 as char).collect();
    assert_eq!(text, "doc 0.0 x");
}
