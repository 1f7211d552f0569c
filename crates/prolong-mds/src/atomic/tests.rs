//! The kill tests of atomic writes (a child process killed at each write
//! step) and the clean-up of dead writers' leftovers.

#![cfg(test)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::error::MdsError;

/// `FORM:CONTENT:PATH` for [`child_write`].
const CHILD_VAR: &str = "PROLONG_ATOMIC_TEST_CHILD";

/// The writer the kill tests run in a child process (this test binary,
/// with [`CHILD_VAR`] and [`KILL_AT_WRITE_VAR`] set); ignored in plain
/// runs, where it has nothing to write.
#[test]
#[ignore = "run by the kill tests in a child process"]
fn child_write() {
    let spec = std::env::var(CHILD_VAR).expect("run by the kill tests");
    let (form, rest) = spec.split_once(':').unwrap();
    let (content, path) = rest.split_once(':').unwrap();
    write(form, Path::new(path), content);
}

/// Writes `content` to `path` in one of the forms: a file from bytes, a
/// file written by a closure at a path, a file written in two parts (the
/// second first), a folder of two files (one in a
/// sub-folder).
fn write(form: &str, path: &Path, content: &str) {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| MdsError::io(p, e)
    };
    match form {
        "file" => write_atomic(path, content.as_bytes()).unwrap(),
        "path" => {
            write_atomic_path(path, |tmp| std::fs::write(tmp, content).map_err(io(tmp))).unwrap()
        }
        "parts" => {
            // The second half first, as a checkpoint writes tensors in the order they
            // arrive, not the order of their offsets.
            let (a, b) = content.as_bytes().split_at(content.len() / 2);
            let mut w = FileWrite::begin(path).unwrap();
            w.write_at(a.len() as u64, b).unwrap();
            w.write_at(0, a).unwrap();
            w.commit().unwrap()
        }
        "dir" => write_atomic_dir(path, |tmp| {
            write_atomic(&tmp.join("a.json"), content.as_bytes())?;
            std::fs::create_dir(tmp.join("sub")).map_err(io(tmp))?;
            write_atomic(&tmp.join("sub/b.bin"), content.repeat(1000).as_bytes())
        })
        .unwrap(),
        _ => unreachable!("{form}"),
    }
}

/// Every entry under `dir` (hidden ones too), by relative path: a file's
/// bytes, a folder as `None`.
fn tree(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The folder holding `name` written as `form` with each content in turn.
fn expected(form: &str, name: &str, contents: &[&str]) -> BTreeMap<String, Option<Vec<u8>>> {
    let dir = tempfile::tempdir().unwrap();
    for content in contents {
        write(form, &dir.path().join(name), content);
    }
    tree(dir.path())
}

/// Kills a child writing "new" over "old" (or over nothing) at each of its
/// write steps: the folder then holds the whole old or the whole new
/// output and nothing else but a dead writer's temporary; the next write
/// leaves exactly its own output. Returns the number of kill points.
fn kill_at_each_step(form: &str, name: &str, over_old: bool) -> usize {
    use std::os::unix::process::ExitStatusExt;
    let old: &[&str] = if over_old { &["old"] } else { &[] };
    let before = expected(form, name, old);
    let after = expected(form, name, &["new"]);
    let next = expected(form, name, &["next"]);
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let path = work.join(name);
    let mut temps_left = 0;
    for n in 1.. {
        if work.exists() {
            std::fs::remove_dir_all(&work).unwrap();
        }
        std::fs::create_dir(&work).unwrap();
        for content in old {
            write(form, &path, content);
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "atomic::tests::child_write", "--ignored"])
            .env(CHILD_VAR, format!("{form}:new:{}", path.display()))
            .env(KILL_AT_WRITE_VAR, n.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            assert_eq!(tree(&work), after, "{form}: the unkilled write");
            assert!(temps_left > 0, "{form}: no kill left a temporary");
            return n - 1;
        }
        assert_eq!(status.signal(), Some(9), "{form}: write {n}");
        let mut got = tree(&work);
        let temps = got.len();
        got.retain(|k, _| !k.starts_with('.'));
        temps_left += temps - got.len();
        assert!(
            got == before || got == after,
            "{form}: killed at write step {n}, the output is neither old nor new: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        write(form, &path, "next");
        assert_eq!(tree(&work), next, "{form}: the write after a kill at {n}");
    }
    unreachable!()
}

#[test]
fn a_killed_file_write_leaves_the_old_file_or_the_new_one() {
    // Three steps: before the temporary, before the rename, after it.
    assert_eq!(kill_at_each_step("file", "index.json", true), 3);
    assert_eq!(kill_at_each_step("file", "index.json", false), 3);
    assert_eq!(kill_at_each_step("path", "model.safetensors", true), 3);
    assert_eq!(kill_at_each_step("parts", "model.safetensors", true), 3);
    assert_eq!(kill_at_each_step("parts", "model.safetensors", false), 3);
}

#[test]
fn a_killed_folder_write_leaves_the_old_folder_or_the_new_one() {
    // Its own three steps and three for each of its two files; one more
    // after a replaced folder is removed.
    assert_eq!(kill_at_each_step("dir", "step-0000010", false), 9);
    assert_eq!(kill_at_each_step("dir", "step-0000010", true), 10);
}

/// The names in `dir`, sorted.
fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The id of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

#[test]
fn only_dead_writers_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (dead, live) = (dead_pid(), std::process::id());
    let plant_dir = |name: &str| {
        std::fs::create_dir_all(d.join(name).join("optimizer")).unwrap();
        std::fs::write(d.join(name).join("optimizer/state.json"), name).unwrap();
    };
    std::fs::write(d.join(format!(".a.json.tmp.{dead}.0")), "{").unwrap();
    std::fs::write(d.join(format!(".a.json.tmp.{live}.1000")), "{").unwrap();
    std::fs::write(d.join(format!(".other.json.tmp.{dead}.0")), "{").unwrap();
    plant_dir(&format!(".ckpt.tmp.{dead}.2"));
    // A dead writer that had renamed the old folder aside and died
    // before its new one took the name: the old one comes back.
    plant_dir(&format!(".ckpt.old.{dead}.3"));
    // One that died after: its old folder goes.
    plant_dir("final");
    plant_dir(&format!(".final.old.{dead}.4"));
    remove_stale_temps(d, &["a.json", "ckpt", "final"]).unwrap();
    let names = sorted_names(d);
    let want = [
        format!(".a.json.tmp.{live}.1000"),
        format!(".other.json.tmp.{dead}.0"),
        "ckpt".into(),
        "final".into(),
    ];
    assert_eq!(names, want);
    let state = std::fs::read_to_string(d.join("ckpt/optimizer/state.json")).unwrap();
    assert_eq!(state, format!(".ckpt.old.{dead}.3"));
    let state = std::fs::read_to_string(d.join("final/optimizer/state.json")).unwrap();
    assert_eq!(state, "final");
    // Whatever the name, a live writer's temporary stays.
    remove_all_stale_temps(d).unwrap();
    let names = sorted_names(d);
    let want = [
        format!(".a.json.tmp.{live}.1000"),
        "ckpt".into(),
        "final".into(),
    ];
    assert_eq!(names, want);
}

/// A temporary folder holding `ckpt/`, a folder written whole with the
/// content "old": what the folder-write tests replace or must keep.
fn old_checkpoint() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    write("dir", &ckpt, "old");
    (dir, ckpt)
}

#[test]
fn a_failed_fill_leaves_nothing_and_keeps_the_old_output() {
    let (dir, ckpt) = old_checkpoint();
    let want = tree(dir.path());
    let err = write_atomic_dir(&ckpt, |tmp| {
        write_atomic(&tmp.join("a.json"), b"new")?;
        Err(MdsError::InvalidSettings("disk full".into()))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid writer settings: disk full");
    let err = write_atomic_path(&dir.path().join("m.safetensors"), |tmp| {
        std::fs::write(tmp, "partial").unwrap();
        Err(MdsError::InvalidSettings("no space".into()))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid writer settings: no space");
    // A file written in parts and dropped before its commit (an error between two
    // parts) leaves no temporary.
    let mut w = FileWrite::begin(&dir.path().join("m.safetensors")).unwrap();
    w.write_at(8, b"partial").unwrap();
    drop(w);
    assert_eq!(tree(dir.path()), want);
}

/// A folder filled by two writers (as a sharded checkpoint's ranks fill it): the
/// second writes into the first's temporary folder by its name; nothing is at
/// `path` until the commit, then both files are. A write dropped before its
/// commit leaves the old folder and no temporary.
#[test]
fn a_folder_filled_by_several_writers_appears_whole_at_the_commit() {
    let (dir, ckpt) = old_checkpoint();
    let old = tree(dir.path());
    let first = DirWrite::begin(&ckpt).unwrap();
    let name = first.tmp().file_name().unwrap().to_owned();
    write_atomic(&first.tmp().join("shard-1"), b"one").unwrap();
    // The other writer knows only the name it was handed.
    write_atomic(&ckpt.with_file_name(&name).join("shard-2"), b"two").unwrap();
    assert!(ckpt.join("a.json").exists() && !ckpt.join("shard-1").exists());
    first.commit().unwrap();
    assert_eq!(sorted_names(&ckpt), ["shard-1", "shard-2"]);
    assert_eq!(sorted_names(dir.path()), ["ckpt"]);

    write("dir", &ckpt, "old");
    let abandoned = DirWrite::begin(&ckpt).unwrap();
    write_atomic(&abandoned.tmp().join("shard-1"), b"one").unwrap();
    drop(abandoned);
    assert_eq!(tree(dir.path()), old);
}
