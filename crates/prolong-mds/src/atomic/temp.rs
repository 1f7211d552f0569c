//! Temporary names beside a final name, tagged with the writer so that no
//! two processes ever share one.

use std::path::{Path, PathBuf};

/// A name beside `path` that no other process picks: `.NAME.tmp.PID.N`.
pub fn temp_path(path: &Path) -> PathBuf {
    tagged(path, "tmp")
}

/// `.NAME.KIND.PID.N` beside `path`, N counting this process's names.
pub(super) fn tagged(path: &Path, kind: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{kind}.{}.{n}", std::process::id()))
}

/// The folder a final name lives in (`.` for a bare name).
pub(super) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
