//! The catalogue of malformed inputs: one row per case, run against a
//! crate's binary by that crate's `tests/catalogue.rs` (prolong-data's,
//! prolong-train's and prolong-eval's include this file). The rule every row
//! checks: a bad input gives exit status 1 and exactly one line on stderr
//! naming the file and the position, or exit status 0 with the bad record
//! counted (and skipped) under its reason.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// What a case must give, exactly.
pub enum Outcome {
    /// Exit status 1 and stderr exactly `error: <this>` and a newline;
    /// `{dir}` stands for the case's temporary folder.
    Error(&'static str),
    /// A command line the argument parser refuses: exit status 2 and
    /// stderr exactly `error: <this>`, a blank line and clap's pointer to
    /// `--help`.
    Usage(&'static str),
    /// Exit status 0 and, in the JSON the command prints on stdout, exactly
    /// these (reason, count) pairs at `pointer` (a JSON pointer).
    Skips {
        pointer: &'static str,
        counts: &'static [(&'static str, u64)],
    },
}

/// One malformed input.
pub struct Case {
    pub name: &'static str,
    /// Writes the bad input (and whatever else the command needs) into the
    /// case's empty temporary folder.
    pub build: fn(&Path),
    /// The command line after the binary; `{dir}` stands for the folder.
    pub args: &'static [&'static str],
    pub outcome: Outcome,
}

/// Runs every case against `bin`, each in a folder of its own, and fails
/// listing every case whose outcome is not the expected one.
pub fn run<'a>(bin: &str, cases: impl IntoIterator<Item = &'a Case>) {
    let cases: Vec<&Case> = cases.into_iter().collect();
    let mut names = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {}", case.name);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap();
        (case.build)(tmp.path());
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{dir}", dir)).collect();
        let out = Command::new(bin).args(&args).output().unwrap();
        let code = out.status.code();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let problem = match &case.outcome {
            Outcome::Error(line) => {
                let want = format!("error: {}\n", line.replace("{dir}", dir));
                (code != Some(1) || stderr != want).then(|| {
                    format!(
                        "want exit 1 and {want:?}\n  got exit {code:?} and {:?}",
                        stderr.replace(dir, "{dir}")
                    )
                })
            }
            Outcome::Usage(line) => {
                let want = format!("error: {line}\n\nFor more information, try '--help'.\n");
                (code != Some(2) || stderr != want).then(|| {
                    format!(
                        "want exit 2 and {want:?}\n  got exit {code:?} and {:?}",
                        stderr.replace(dir, "{dir}")
                    )
                })
            }
            Outcome::Skips { pointer, counts } => {
                let want: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|&(reason, n)| (reason.to_string(), n.into()))
                    .collect();
                let got = serde_json::from_str::<serde_json::Value>(&stdout)
                    .ok()
                    .and_then(|v| v.pointer(pointer).cloned());
                (code != Some(0) || got.as_ref() != Some(&serde_json::Value::Object(want)))
                    .then(|| {
                        format!(
                            "want exit 0 and {pointer} = {counts:?}\n  got exit {code:?}, {got:?}, stderr {:?}",
                            stderr.replace(dir, "{dir}")
                        )
                    })
            }
        };
        if let Some(p) = problem {
            wrong.push(format!("{}: {p}", case.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
