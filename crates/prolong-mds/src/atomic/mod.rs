//! Files and folders appear under their final name only once they are
//! complete: the one way this workspace writes its outputs.
//!
//! # The API
//!
//! | write                                   | use                                                                 |
//! |-----------------------------------------|---------------------------------------------------------------------|
//! | [`write_atomic`]`(path, bytes)`         | a file from bytes in memory (index.json, markers, stats, manifests) |
//! | [`write_atomic_parts`]`(path, parts)`   | a file from several slices back to back (shards)                    |
//! | [`write_atomic_with`]`(path, sync, f)`  | a file streamed through a `BufWriter` by `f` (large outputs)        |
//! | [`write_atomic_path`]`(path, f)`        | a file that a library writes to a path it is given (`f(tmp)`: candle's `safetensors::save`) |
//! | [`FileWrite`]`::begin(path)` … `write_at(offset, bytes)` … `commit()` | a file written in parts, in any order, over time (a checkpoint's safetensors file, tensor by tensor as each is gathered) |
//! | [`write_atomic_dir`]`(path, f)`         | a whole folder: `f(tmp)` fills a fresh empty folder (checkpoints, exported models) |
//! | [`DirWrite`]`::begin(path)` … `commit()` | a whole folder that several processes fill (sharded checkpoints: one begins, hands the others [`DirWrite::tmp`]'s name, commits after a barrier) |
//!
//! Every one of them, for the final name `DIR/NAME`:
//!
//! 1. removes what dead writers of `NAME` left in `DIR` ([`remove_stale_temps`]):
//!    their temporary files and folders, so a re-run after a kill leaves none;
//! 2. writes under a temporary name tagged with the writer, `DIR/.NAME.tmp.PID.N`
//!    ([`temp_path`]: process id and a per-process counter), so two writers
//!    of the same name never share a temporary and a live writer's temporary
//!    is never removed by another process;
//! 3. syncs the data (`fsync` of the file; for a folder, of every file and
//!    folder inside it), renames it to `DIR/NAME`, then syncs `DIR`, so that
//!    after the rename the name and the data survive a crash of the machine;
//! 4. on an error, removes its temporary and returns the error naming the path.
//!
//! A folder that already exists under the final name is replaced atomically:
//! on Linux the new folder and the old one swap names in one `renameat2`
//! (`RENAME_EXCHANGE`) and the old one, now under the writer's temporary name,
//! is removed after it; `DIR/NAME` is at every moment either the whole old
//! folder or the whole new one. Where the exchange is not available the old
//! folder is first renamed aside to `DIR/.NAME.old.PID.N`; a writer that
//! finds a dead writer's `.old` folder with no `DIR/NAME` renames it back
//! (the old folder is restored), otherwise removes it.
//!
//! A folder's own files can be written inside `f` with plain `std::fs`
//! calls or with the functions above (both are synced before the rename; the
//! functions above give kill tests their steps); its sub-folders are `f`'s to
//! create. An `f` that fails leaves nothing.
//!
//! [`remove_all_stale_temps`]`(dir)` removes every dead writer's leftovers in
//! `dir` whatever their names (for a folder whose names are not all written
//! again, such as a trainer's checkpoints folder on resume).
//!
//! Errors are [`MdsError`]; `write_atomic_path` and `write_atomic_dir` return
//! the closure's error type `E`, which must implement `From<MdsError>` (add an
//! `#[error(transparent)] Write(#[from] prolong_mds::MdsError)` variant to the
//! crate's error enum, as `prolong_train::Error` has).
//!
//! # Example: a checkpoint folder
//!
//! ```no_run
//! use prolong_mds::{MdsError, write_atomic, write_atomic_dir};
//! # fn save(dir: &std::path::Path) -> Result<(), MdsError> {
//! // `dir` (say out/checkpoints/step-0000100) appears whole or not at all; a
//! // folder already there is replaced in one step.
//! write_atomic_dir(dir, |tmp| {
//!     let opt = tmp.join("optimizer");
//!     std::fs::create_dir(&opt).map_err(|err| MdsError::Io { path: opt.clone(), err })?;
//!     write_atomic(&opt.join("state.json"), b"{}")?;
//!     write_atomic(&tmp.join("trainer_state.json"), b"{}")
//! })
//! # }
//! ```
//!
//! # Kill testing
//!
//! With `PROLONG_KILL_AT_WRITE=N` ([`KILL_AT_WRITE_VAR`]) in its environment,
//! a process sends itself SIGKILL when it reaches its N-th write step
//! ([`write_step`], counting from 1). Each file write has three steps: before
//! its temporary is created, after it is written and synced but before the
//! rename, and after the rename and the folder's sync. A folder write has
//! the same three, plus one after the old folder is removed when it replaces
//! one (the steps of the writes inside `f` come between the first and the
//! second). Writers that append instead (the trainer's metrics lines) call
//! [`write_step`] once per record. Kill tests choose their kill points by
//! this count, never by timing, so every point is reached on any machine
//! under any load.

mod dir;
mod file;
mod kill;
mod stale;
mod sync;
mod temp;

pub use dir::{DirWrite, write_atomic_dir};
pub use file::{FileWrite, write_atomic, write_atomic_parts, write_atomic_path, write_atomic_with};
pub use kill::{KILL_AT_WRITE_VAR, write_step};
pub use stale::{remove_all_stale_temps, remove_stale_temps};
pub use sync::sync_dir;
pub use temp::temp_path;

#[cfg(test)]
mod tests {
    //! The kill tests of atomic writes (a child process killed at each write
    //! step) and the clean-up of dead writers' leftovers.

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
            "path" => write_atomic_path(path, |tmp| std::fs::write(tmp, content).map_err(io(tmp)))
                .unwrap(),
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

    /// The names in `dir` (not below it), sorted.
    fn sorted_names(dir: &Path) -> Vec<String> {
        tree(dir).into_keys().filter(|k| !k.contains('/')).collect()
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
}
