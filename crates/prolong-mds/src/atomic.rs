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
//! | [`write_atomic_dir`]`(path, f)`         | a whole folder: `f(tmp)` fills a fresh empty folder (checkpoints, exported models) |
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

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{MdsError, Result};

/// A name beside `path` that no other process picks: `.NAME.tmp.PID.N`.
pub fn temp_path(path: &Path) -> PathBuf {
    tagged(path, "tmp")
}

/// `.NAME.KIND.PID.N` beside `path`, N counting this process's names.
fn tagged(path: &Path, kind: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{kind}.{}.{n}", std::process::id()))
}

/// The environment variable that kills a process at its N-th write step
/// (see the module docs).
pub const KILL_AT_WRITE_VAR: &str = "PROLONG_KILL_AT_WRITE";

/// One write step: the process dies here if it is the step
/// `PROLONG_KILL_AT_WRITE` names. Every write of this module calls it (see
/// the module docs); writers that do not go through them (the trainer's
/// appended metrics lines) call it once per record, so that kill tests can
/// stop them by progress too.
pub fn write_step() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();
    static STEPS: AtomicU64 = AtomicU64::new(0);
    let kill_at = *KILL_AT.get_or_init(|| {
        std::env::var(KILL_AT_WRITE_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    if let Some(at) = kill_at
        && STEPS.fetch_add(1, Ordering::SeqCst) + 1 == at
    {
        kill_self();
    }
}

/// Dies as `kill -9` kills: no destructor runs, no buffer is flushed.
fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: kill(2) on our own pid touches no memory of this process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL is delivered before kill(2) returns; elsewhere, abort.
    std::process::abort()
}

/// Writes `bytes` to a temporary name beside `path`, syncs it, renames it
/// into place and syncs the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of `parts` written back to back (a shard's header and
/// samples without concatenating them first).
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    write_atomic_with(path, true, |file| {
        parts.iter().try_for_each(|p| file.write_all(p))
    })
}

/// Streams a file to a temporary name beside `path` (`fill` writes it through
/// a buffer), then renames it into place. With `sync` the file is synced
/// before the rename and the folder after it; `sync: false` is for caches
/// only (data that can be derived again, such as a decompressed shard): a
/// killed process still leaves the whole file or none, but a crash of the
/// machine may lose it.
pub fn write_atomic_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = begin(path)?;
    let result = (|| {
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(MdsError::io(path, e));
    }
    commit_file(&tmp, path, sync)
}

/// Has `fill` write the file at the temporary path it is given (for
/// libraries that only write to a path, such as candle's
/// `safetensors::save`), then syncs it, renames it to `path` and syncs the
/// folder. A failing `fill` leaves nothing.
pub fn write_atomic_path<E: From<MdsError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let tmp = begin(path)?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_data());
    if let Err(e) = synced {
        let _ = std::fs::remove_file(&tmp);
        return Err(MdsError::io(path, e).into());
    }
    Ok(commit_file(&tmp, path, true)?)
}

/// Writes the folder `path` whole: `fill` fills a fresh empty folder at the
/// temporary path it is given (`.NAME.tmp.PID.N` beside `path`), then every
/// file and folder in it is synced, it takes the name `path` (replacing a
/// folder of that name atomically, see the module docs) and the parent is
/// synced. Creates the parent folder if needed. A failing `fill` leaves
/// nothing; `path` keeps its old folder.
pub fn write_atomic_dir<E: From<MdsError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let parent = parent_of(path);
    std::fs::create_dir_all(parent).map_err(|e| MdsError::io(parent, e))?;
    let tmp = begin(path)?;
    std::fs::create_dir(&tmp).map_err(|e| MdsError::io(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = sync_tree(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    write_step();
    let replaced = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(MdsError::io(path, e).into()),
        Ok(_) => Some(replace(&tmp, path)?),
    };
    if replaced.is_none() {
        std::fs::rename(&tmp, path).map_err(|e| MdsError::io(path, e))?;
    }
    sync_dir(parent)?;
    write_step();
    if let Some(old) = replaced {
        remove_any(&old)?;
        write_step();
    }
    Ok(())
}

/// Puts the complete folder `tmp` at `path`, which exists, and returns where
/// the old one now is (to be removed).
fn replace(tmp: &Path, path: &Path) -> Result<PathBuf> {
    match exchange(tmp, path) {
        Ok(()) => return Ok(tmp.to_path_buf()),
        // Not Linux, or a file system without RENAME_EXCHANGE.
        Err(e) if matches!(e.raw_os_error(), Some(code) if is_unsupported(code)) => {}
        Err(e) => return Err(MdsError::io(path, e)),
    }
    let old = tagged(path, "old");
    std::fs::rename(path, &old).map_err(|e| MdsError::io(path, e))?;
    std::fs::rename(tmp, path).map_err(|e| MdsError::io(path, e))?;
    Ok(old)
}

/// Swaps the names `a` and `b` in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(UNSUPPORTED))
}

#[cfg(not(target_os = "linux"))]
const UNSUPPORTED: i32 = -1;

/// Whether `exchange` failed because the system or file system lacks it.
fn is_unsupported(code: i32) -> bool {
    #[cfg(target_os = "linux")]
    let unsupported = [libc::EINVAL, libc::ENOSYS, libc::ENOTSUP];
    #[cfg(not(target_os = "linux"))]
    let unsupported = [UNSUPPORTED];
    unsupported.contains(&code)
}

/// The folder a final name lives in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Steps 1 and 2 of every write: dead writers' temporaries of this name
/// removed, the first write step, the new temporary's name.
fn begin(path: &Path) -> Result<PathBuf> {
    if let Some(name) = path.file_name() {
        remove_stale_temps(parent_of(path), &[&name.to_string_lossy()])?;
    }
    write_step();
    Ok(temp_path(path))
}

/// The end of a file write: the rename, the folder's sync, the last step.
fn commit_file(tmp: &Path, path: &Path, sync: bool) -> Result<()> {
    write_step();
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(MdsError::io(path, e));
    }
    if sync {
        sync_dir(parent_of(path))?;
    }
    write_step();
    Ok(())
}

/// Syncs a folder's entries (names created, renamed or removed in it).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MdsError::io(dir, e))?;
    // Elsewhere folders cannot be opened to sync; a rename is durable there
    // once the file system says so.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Syncs every file and folder under `dir`, and `dir` itself (contents
/// before the folder that names them).
fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| MdsError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MdsError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| MdsError::io(&path, e))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_data())
                .map_err(|e| MdsError::io(&path, e))?;
        }
    }
    sync_dir(dir)
}

/// Removes a file or a folder with everything in it; gone already is fine.
fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(MdsError::io(path, e)),
        _ => Ok(()),
    }
}

/// Removes what killed writers left in `dir` for the given final names:
/// their temporary files and folders (`.NAME.tmp.PID.N`), and the old
/// folders they had renamed aside (`.NAME.old.PID.N`; one whose `NAME` is
/// missing is renamed back to it, as the writer died before its new folder
/// took the name). Only the leftovers of processes that no longer run on this
/// machine are touched, so a concurrent writer here is never disturbed; where
/// that cannot be told (no `/proc`), none are. Every write of this module
/// calls it first; a stage calls it for the names it merges (index.json)
/// before deciding whether a merge is needed.
pub fn remove_stale_temps(dir: &Path, names: &[&str]) -> Result<()> {
    remove_stale(dir, |name| names.contains(&name))
}

/// [`remove_stale_temps`] for every final name in `dir`: for a folder whose
/// writes may not be repeated under the same names (a trainer's checkpoints
/// folder on resume, before it lists the complete ones).
pub fn remove_all_stale_temps(dir: &Path) -> Result<()> {
    remove_stale(dir, |_| true)
}

fn remove_stale(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<()> {
    if !Path::new("/proc/self").exists() {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut restore = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some((name, kind, pid)) = file_name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(rest, _n)| rest.rsplit_once('.'))
            .and_then(|(rest, pid)| {
                let (name, kind) = rest.rsplit_once('.')?;
                Some((name, kind, pid))
            })
        else {
            continue;
        };
        let dead = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists();
        if !dead || !wanted(name) {
            continue;
        }
        match kind {
            "tmp" => remove_any(&entry.path())?,
            "old" if entry.file_type().is_ok_and(|t| t.is_dir()) => {
                restore.push((entry.path(), dir.join(name)));
            }
            _ => {}
        }
    }
    // After the scan, so that a folder restored here is not looked at again.
    for (old, path) in restore {
        if std::fs::symlink_metadata(&path).is_ok() {
            remove_any(&old)?;
        } else {
            std::fs::rename(&old, &path).map_err(|e| MdsError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
    /// file written by a closure at a path, a folder of two files (one in a
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
    }

    #[test]
    fn a_killed_folder_write_leaves_the_old_folder_or_the_new_one() {
        // Its own three steps and three for each of its two files; one more
        // after a replaced folder is removed.
        assert_eq!(kill_at_each_step("dir", "step-0000010", false), 9);
        assert_eq!(kill_at_each_step("dir", "step-0000010", true), 10);
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
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
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
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want = [
            format!(".a.json.tmp.{live}.1000"),
            "ckpt".into(),
            "final".into(),
        ];
        assert_eq!(names, want);
    }

    #[test]
    fn a_failed_fill_leaves_nothing_and_keeps_the_old_output() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        write("dir", &ckpt, "old");
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
        assert_eq!(tree(dir.path()), want);
    }
}
