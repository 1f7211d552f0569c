//! Shared by prolong-data's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// GPT-2's byte-to-character map of byte-level BPE.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| {
        (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    if printable(b) {
        return char::from(b);
    }
    let shifted = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shifted).unwrap()
}

/// A byte-level BPE tokenizer.json with the 256 byte tokens (id = byte) and
/// no merges, GPT-2's pre-tokenizer: one token per byte of text, so tests can
/// predict every id.
pub fn byte_tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..=255u8)
        .map(|b| (byte_char(b).to_string(), serde_json::Value::from(b as u32)))
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []
        }
    })
    .to_string()
}

pub fn write_byte_tokenizer(dir: &Path) -> PathBuf {
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, byte_tokenizer_json()).unwrap();
    path
}

/// `output` of a finished command, failing the test with its stderr unless
/// it succeeded.
pub fn succeeded(output: std::process::Output) -> std::process::Output {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the `prolong-data` binary with `args`: (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A stage's skip counts as (reason, count) pairs, in reason order.
pub fn skip_reasons(skipped: &prolong_data::tokenize::stage::SkipCountsRecord) -> Vec<(&str, u64)> {
    skipped
        .by_reason
        .iter()
        .map(|(reason, n)| (reason.as_str(), *n))
        .collect()
}

/// Every file under `dir`, relative path → bytes.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Fixtures fetched by `make fixtures`, or `None` (and a line saying the test skipped).
pub fn fixture(rel: &str, test: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cache")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipped {test}: {} is missing (run `make fixtures`)",
            path.display()
        );
        None
    }
}

/// (domain, input_ids) of every sample of a tokenized dataset, checking that
/// `length` agrees with the ids.
pub fn read_tokenized(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let ds = prolong_mds::MdsDataset::open(dir).unwrap();
    (0..ds.len())
        .map(|i| {
            let s = ds.get(i).unwrap();
            let ids = s.u32s("input_ids").unwrap().into_owned();
            assert_eq!(s.integer("length").unwrap(), ids.len() as i128);
            (s.str("domain").unwrap().to_string(), ids)
        })
        .collect()
}

/// Runs a stage command into `clean` undisturbed, then into `killed`,
/// killing it with SIGKILL after each of `delays_ms` and re-running it to
/// completion; the two outputs must be the same bytes (stats files aside:
/// they name their output folder). A killed run must never leave a merged
/// index.json without its task's marker.
pub fn assert_kill_and_rerun_is_identical(
    command: impl Fn(&Path) -> std::process::Command,
    clean: &Path,
    killed: &Path,
    delays_ms: &[u64],
) {
    assert!(command(clean).status().unwrap().success());
    for &delay_ms in delays_ms {
        let mut child = command(killed).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !killed.join("proc0-1.done").exists() {
            assert!(
                !killed.join("index.json").exists(),
                "a killed run left a finished-looking index"
            );
        }
    }
    assert!(command(killed).status().unwrap().success());
    let (a, b) = (files(clean), files(killed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        if !name.ends_with(".stats.json") {
            assert!(b[name] == *bytes, "{name} differs after kill and rerun");
        }
    }
}

/// Llama-3's chat special tokens, as the added tokens of
/// [`chat_tokenizer_json`]: ids 256.. in this order.
pub const CHAT_TOKENS: [&str; 5] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
];

/// [`byte_tokenizer_json`] plus [`CHAT_TOKENS`] as added special tokens
/// (ids 256..=260), for chat tests that predict every id.
pub fn chat_tokenizer_json() -> String {
    let mut v: serde_json::Value = serde_json::from_str(&byte_tokenizer_json()).unwrap();
    v["added_tokens"] = CHAT_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": 256 + i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    v.to_string()
}
