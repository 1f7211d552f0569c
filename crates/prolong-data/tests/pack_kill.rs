//! `prolong-data pack` killed with SIGKILL at several moments, then re-run,
//! gives the same bytes as an uninterrupted run.

mod common;

use std::path::Path;

use common::files;
use prolong_mds::{Array, MdsWriter, Value, WriterOptions};

/// A tokenized dataset of seeded documents, big enough that packing takes a
/// good fraction of a second.
fn tokenized(dir: &Path) {
    let mut writer = MdsWriter::create(
        dir,
        &[
            ("domain", "str"),
            ("input_ids", "ndarray:uint32"),
            ("length", "int"),
        ],
        WriterOptions::default().size_limit(8 << 20),
    )
    .unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let len = 1000 + (next() % 60_000) as usize;
        let ids: Vec<u32> = (0..len).map(|_| (next() % 128_000) as u32).collect();
        writer
            .write(&[
                ("domain", Value::Str("book".into())),
                ("input_ids", Value::Array(Array::from_u32(&ids))),
                ("length", Value::Int(len as i64)),
            ])
            .unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn killed_pack_then_rerun_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    tokenized(&input);
    let pack = |out: &Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"));
        c.args([
            "pack",
            input.to_str().unwrap(),
            "--len",
            "8192",
            "--size-limit",
            "2000000",
            "--out",
        ])
        .arg(out)
        .stdout(std::process::Stdio::null());
        c
    };
    let clean = tmp.path().join("clean");
    assert!(pack(&clean).status().unwrap().success());
    let killed = tmp.path().join("killed");
    for delay_ms in [20, 80, 200] {
        let mut child = pack(&killed).spawn().unwrap();
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
    assert!(pack(&killed).status().unwrap().success());
    let (a, b) = (files(&clean), files(&killed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        if name.ends_with(".stats.json") {
            continue; // names the output folder
        }
        assert!(b[name] == *bytes, "{name} differs after kill and rerun");
    }
}
