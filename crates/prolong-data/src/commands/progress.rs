//! Progress bars shared by the commands (hidden when stderr is not a terminal).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use prolong_data::task::OnProgress;
use prolong_data::tokenize::stage::OnBytes;

/// A bar of `len` units named `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    styled(len, what, "{pos}/{len} ({per_sec}, {eta} left)")
}

/// A bar named `what` showing `counts` (indicatif's template keys) after it.
fn styled(len: u64, what: &str, counts: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{msg:12}} [{{bar:40}}] {counts}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs `f` with a progress callback (bytes of `files` read so far) that
/// moves a byte-counting bar named `what`, for stages that read whole files;
/// the bar is cleared after, whether `f` failed or not. An unreadable file
/// counts 0 towards the total: reading it reports the error.
pub fn reading<'a, T>(
    files: impl IntoIterator<Item = &'a PathBuf>,
    what: &str,
    f: impl FnOnce(&mut OnBytes<'_>) -> T,
) -> T {
    let total: u64 = (files.into_iter())
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = styled(
        total,
        what,
        "{bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    );
    let result = f(&mut |done| bar.set_position(done));
    bar.finish_and_clear();
    result
}

/// Runs `f` with a progress callback `(done, total)` that moves a bar named
/// `what`, for stages whose total is known only once they run; the bar is
/// cleared after, whether `f` failed or not.
pub fn following<T>(what: &str, f: impl FnOnce(&mut OnProgress<'_>) -> T) -> T {
    let bar = bar(0, what);
    let result = f(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    result
}
