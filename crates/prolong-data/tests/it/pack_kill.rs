//! `prolong-data pack` killed with SIGKILL at every write step, then re-run,
//! gives the same bytes as an uninterrupted run.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::assert_kill_and_rerun_is_identical;
use prolong_mds::{Array, MdsWriter, Value, WriterOptions};

/// A fresh folder holding `tok`, a tokenized dataset of seeded documents: a
/// few shards of packed output.
fn tokenized() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tok");
    let mut writer = MdsWriter::create(
        &dir,
        &prolong_packed::columns::TOKENIZED,
        WriterOptions::default().size_limit(1 << 18),
    )
    .unwrap();
    let mut rng = prolong_rng::SplitMix64::new(0x2545_f491_4f6c_dd1d);
    let mut next = || rng.next_u64();
    for _ in 0..60 {
        let len = 100 + (next() % 6_000) as usize;
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
    (tmp, dir)
}

/// `prolong-data pack INPUT --len 8192 FLAGS --out OUT`.
fn pack_8k(input: &Path, flags: &[&str]) -> impl Fn(&Path) -> std::process::Command + use<> {
    let mut all = vec!["--len", "8192"];
    all.extend(flags);
    common::cli_into("pack", &[input], &all)
}

#[test]
fn killed_pack_then_rerun_is_byte_identical() {
    let (tmp, input) = tokenized();
    let pack = pack_8k(&input, &["--size-limit", "200000"]);
    assert_kill_and_rerun_is_identical(pack, tmp.path(), 10);
}

/// What killed writers leave in a finished output (a half-written merged
/// index, with or without the index itself, in the root and in a split
/// folder; a half-written marker): a re-run removes it and writes the index.
#[test]
fn rerun_removes_the_temps_of_killed_writers() {
    let (tmp, input) = tokenized();
    let pack = pack_8k(&input, &["--split-by-lengths", "4096,8192"]);
    common::assert_rerun_removes_dead_temps(pack, &tmp.path().join("packed"), &[".", "4096-8192"]);
}
