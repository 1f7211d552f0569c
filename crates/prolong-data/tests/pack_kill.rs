//! `prolong-data pack` killed with SIGKILL at several moments, then re-run,
//! gives the same bytes as an uninterrupted run.

mod common;

use std::path::Path;

use common::assert_kill_and_rerun_is_identical;
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
    assert_kill_and_rerun_is_identical(
        pack,
        &tmp.path().join("clean"),
        &tmp.path().join("killed"),
        &[20, 80, 200],
    );
}

/// A run killed while it wrote the merged index leaves `.index.json.tmp.PID.N`
/// in the output folder (the task itself is complete): the re-run removes it
/// and writes the index, as the kill test above can hit only by chance.
#[test]
fn rerun_removes_the_merged_index_temp_of_a_killed_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    tokenized(&input);
    let out = tmp.path().join("packed");
    let pack = || {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_prolong-data"))
            .args(["pack", input.to_str().unwrap(), "--len", "65536", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    };
    pack();
    let index = std::fs::read(out.join("index.json")).unwrap();
    // What the killed run left: no merged index, half of one under a dead process's name.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let stale = out.join(format!(".index.json.tmp.{}.7", dead.id()));
    std::fs::write(&stale, &index[..index.len() / 2]).unwrap();
    std::fs::remove_file(out.join("index.json")).unwrap();
    pack();
    assert!(
        !stale.exists(),
        "the killed run's temporary index is still there"
    );
    assert_eq!(std::fs::read(out.join("index.json")).unwrap(), index);
}
