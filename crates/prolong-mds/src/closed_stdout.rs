//! A closed stdout ends a command quietly, as it ends a Unix tool
//! (`prolong-data stats DIR | head -1`). Rust ignores SIGPIPE, so `println!`
//! to a closed pipe panics ("failed printing to stdout: Broken pipe") with
//! exit status 101 and a panic message. Restoring SIGPIPE instead would also
//! kill a process silently on a write to any other closed pipe (a child
//! process's stdin), hiding a real error; so only that one panic is turned
//! into a quiet exit. It lives here because every binary depends on this crate.

/// The exit status a shell reports for a process killed by SIGPIPE (128 + 13),
/// what `yes | head -1` gives for `yes`.
pub const CLOSED_STDOUT_EXIT: i32 = 141;

/// Installs a panic hook that exits with [`CLOSED_STDOUT_EXIT`], printing
/// nothing, when printing to stdout failed because the reader closed it;
/// every other panic goes to the previous hook as before.
pub fn exit_quietly_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout_panic(message) {
            std::process::exit(CLOSED_STDOUT_EXIT);
        }
        previous(info)
    }));
}

/// Whether a panic message is std's for printing to a closed stdout.
fn is_closed_stdout_panic(message: &str) -> bool {
    let broken_pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    message.starts_with("failed printing to stdout")
        && (message.contains(&broken_pipe) || message.contains("os error 32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_closed_stdout_panic_is_recognised() {
        assert!(is_closed_stdout_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout_panic(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_stdout_panic("index out of bounds"));
    }
}
