//! Shared by prolong-data's integration tests.
#![allow(dead_code)]

pub mod catalogue;
mod shared;

pub use shared::{byte_char, copy_dir, fixture, sorted_names, succeeded};

use std::path::{Path, PathBuf};

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

/// The byte tokenizer, written as `dir/tokenizer.json` and loaded from there.
pub fn byte_tokenizer(dir: &Path) -> prolong_data::tokenize::Tokenizer {
    prolong_data::tokenize::Tokenizer::from_file(write_byte_tokenizer(dir)).unwrap()
}

/// `files` (path relative to `dir`, content) written under `dir`, with the
/// folders they need.
pub fn write_files<P: AsRef<Path>, C: AsRef<[u8]>>(
    dir: &Path,
    files: impl IntoIterator<Item = (P, C)>,
) {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// `err` is one line (a refusal's single error line) holding every one of `parts`.
pub fn assert_error_line(err: &str, parts: &[&str]) {
    assert_eq!(err.lines().count(), 1, "{err}");
    for part in parts {
        assert!(err.contains(part), "{part:?} is not in {err}");
    }
}

/// The stderr of a finished command, which must have failed.
pub fn failed(output: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it succeeded: {err}");
    err
}

/// The `prolong-data` binary outside any Slurm array: a task comes from the
/// arguments alone.
pub fn cli() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"));
    c.env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT");
    c
}

/// `prolong-data STAGE INPUTS FLAGS --out OUT` (as [`cli`] runs it) for
/// whichever OUT it is given: the command that the kill and dead-temp checks
/// run again and again.
pub fn cli_into(
    stage: &str,
    inputs: &[impl AsRef<std::ffi::OsStr>],
    flags: &[&str],
) -> Box<dyn Fn(&Path) -> std::process::Command> {
    let mut args = vec![std::ffi::OsString::from(stage)];
    args.extend(inputs.iter().map(|i| i.as_ref().to_owned()));
    args.extend(flags.iter().map(std::ffi::OsString::from));
    Box::new(move |out: &Path| {
        let mut c = cli();
        c.args(&args).arg("--out").arg(out);
        c
    })
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

/// Runs a stage command into `dir/clean` undisturbed; then, for each write step
/// N = 1, 2, ... of a run (`PROLONG_KILL_AT_WRITE`, see `prolong_mds::atomic`:
/// three per file written, the last ones inside the final marker and index
/// writes), into a fresh `dir/killed` that it SIGKILLs itself at step N, then
/// re-runs to completion. Each re-run's output must be the same bytes as the
/// clean one (stats files aside: they name their output folder), with no
/// temporary file left; a killed run must never leave a merged index.json
/// without its tasks' markers. Stops at the first N a run survives and
/// returns how many kill points it checked, at least `min_points`.
pub fn assert_kill_and_rerun_is_identical(
    command: impl Fn(&Path) -> std::process::Command,
    dir: &Path,
    min_points: usize,
) -> usize {
    assert_kill_tasks_and_rerun_is_identical(|out| vec![command(out)], dir, min_points)
}

/// [`assert_kill_and_rerun_is_identical`] for a run of several processes one
/// after another, as a job array runs a stage's tasks (`--rank R
/// --world-size N`) or a recipe's steps: each process in turn is killed at
/// each of its write steps (a process counts its own), after the ones before
/// it completed; then all of them re-run. Returns the kill points of all
/// processes together, at least `min_points`.
pub fn assert_kill_tasks_and_rerun_is_identical(
    commands: impl Fn(&Path) -> Vec<std::process::Command>,
    dir: &Path,
    min_points: usize,
) -> usize {
    let (clean, killed) = (&dir.join("clean"), &dir.join("killed"));
    use std::os::unix::process::ExitStatusExt;
    let run = |mut c: std::process::Command, kill_at: Option<usize>| {
        c.env_remove(prolong_mds::KILL_AT_WRITE_VAR);
        if let Some(n) = kill_at {
            c.env(prolong_mds::KILL_AT_WRITE_VAR, n.to_string());
        }
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    let run_all = |out: &Path| {
        for c in commands(out) {
            succeeded(run(c, None));
        }
    };
    run_all(clean);
    let want = files(clean);
    let markers: Vec<&String> = want.keys().filter(|k| k.ends_with(".done")).collect();
    let mut points = 0;
    for task in 0..commands(clean).len() {
        for n in 1.. {
            if killed.exists() {
                std::fs::remove_dir_all(killed).unwrap();
            }
            let mut tasks = commands(killed).into_iter();
            for c in tasks.by_ref().take(task) {
                succeeded(run(c, None));
            }
            let output = run(tasks.next().unwrap(), Some(n));
            if output.status.success() {
                points += n - 1;
                break;
            }
            let at = format!("kill at write {n} of process {task}");
            assert_eq!(
                output.status.signal(),
                Some(9),
                "{at}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            if killed.join("index.json").exists() {
                let missing: Vec<_> = markers
                    .iter()
                    .filter(|m| !killed.join(m).exists())
                    .collect();
                assert!(
                    missing.is_empty(),
                    "{at} left a finished-looking index without {missing:?}"
                );
            }
            run_all(killed);
            let got = files(killed);
            let temps: Vec<&String> = got.keys().filter(|k| k.contains(".tmp.")).collect();
            assert!(temps.is_empty(), "{at} left {temps:?}");
            assert_eq!(
                want.keys().collect::<Vec<_>>(),
                got.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (name, bytes) in &want {
                if !name.ends_with(".stats.json") {
                    assert!(
                        got[name] == *bytes,
                        "{name} differs after a {at} and a re-run"
                    );
                }
            }
        }
    }
    assert!(
        points >= min_points,
        "only {points} kill points, want {min_points}"
    );
    println!("checked {points} kill points");
    points
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

/// The id of a process that has exited: temporary files named after it are a
/// dead writer's.
pub fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

/// Runs a stage command into `out`; then leaves what killed writers leave:
/// a half-written `.index.json.tmp.PID.N` in each folder of `merged` (relative
/// to `out`; "." for `out` itself), the first of them without its index.json,
/// and a half-written marker temp beside the markers. A re-run must remove
/// every such temp and give the same bytes as the first run.
pub fn assert_rerun_removes_dead_temps(
    command: impl Fn(&Path) -> std::process::Command,
    out: &Path,
    merged: &[&str],
) {
    let run = |out: &Path| {
        let mut c = command(out);
        c.env_remove(prolong_mds::KILL_AT_WRITE_VAR);
        c.stdout(std::process::Stdio::null());
        succeeded(c.output().unwrap())
    };
    run(out);
    let want = files(out);
    let pid = dead_pid();
    let mut planted = vec![out.join(format!(".proc0-1.done.tmp.{pid}.3"))];
    std::fs::write(&planted[0], b"{").unwrap();
    for (i, dir) in merged.iter().enumerate() {
        let index = out.join(dir).join("index.json");
        let bytes = std::fs::read(&index).unwrap();
        let temp = out.join(dir).join(format!(".index.json.tmp.{pid}.{i}"));
        std::fs::write(&temp, &bytes[..bytes.len() / 2]).unwrap();
        if i == 0 {
            std::fs::remove_file(&index).unwrap();
        }
        planted.push(temp);
    }
    run(out);
    for temp in &planted {
        assert!(!temp.exists(), "{} is still there", temp.display());
    }
    assert!(files(out) == want, "the re-run's output differs");
}
