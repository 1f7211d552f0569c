//! One document per repository out of per-file rows: ProLong's
//! `thestackv1_concat_by_repo` from The Stack v1, whose Parquet files hold
//! one row per source file (`content`, `max_stars_repo_name`,
//! `max_stars_repo_path`, ...).
//!
//! The Stack makes no promise that a repository's rows are adjacent: its
//! files are split by language (`data/<language>/train-*.parquet`), so a
//! repository with Python and C files sits in two folders, and nothing
//! documents an order within a language. So grouping reads every input
//! file, in two passes, in bounded memory:
//!
//! 1. Every row of every file is read; a row whose repository hashes to this
//!    task (`xxh3(repo) mod N = R`) is appended to one of [`BUCKETS`] scratch
//!    files, chosen by the same hash. Rows that name no repository (and other
//!    skips) are counted by the task of their file (`file index mod N = R`),
//!    so the N tasks together count each once.
//! 2. Each bucket in turn is loaded, its rows sorted by (repository, path,
//!    input order), and each repository becomes one document: its files in
//!    byte order of their paths, as the repos stage writes them
//!    ([`crate::repos::render`]: `==> PATH <==` headers). A second row of
//!    one repository and path is skipped (`duplicate_path`, the first kept);
//!    a file with a line of the header's form is skipped
//!    (`header_collision`), as in the repos stage.
//!
//! Memory is one bucket: about 1/[`BUCKETS`] of this task's share of the
//! rows. Documents come in bucket order, then repository name; the id is
//! the repository. Every repository lands whole in exactly one task, so the
//! documents do not depend on N (only their order and task do). The scratch
//! folder is removed at the end and at the start of a redo.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{
    Document, DocumentError, Fields, Record, RepoFile, SkipReason, Skipped, read_documents,
};
use crate::repos::{is_header_like, render};
use crate::task::TaskSpec;

/// Scratch files a task spreads its rows over.
pub const BUCKETS: u64 = 256;

/// One row in a bucket, and where it came from (for skips).
struct Row {
    repo: String,
    path: String,
    text: String,
    file: u32,
    line: u64,
}

/// Groups the rows of `files` (per [`Fields::group`]) that belong to `task`
/// into one document per repository, calling `emit` with each document and
/// each skip this task counts; `scratch` is a folder of its own (created and
/// removed here). `on_file` hears the input bytes read so far after each file.
pub fn for_each_repository<E: From<DocumentError>>(
    files: &[PathBuf],
    fields: &Fields,
    task: TaskSpec,
    scratch: &Path,
    on_file: &mut dyn FnMut(u64),
    mut emit: impl FnMut(Record) -> Result<(), E>,
) -> Result<(), E> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |err| DocumentError::Open { path, err }
    };
    if fields.group.is_none() {
        return Err(DocumentError::Open {
            path: scratch.into(),
            err: std::io::Error::other("grouping by repository needs the group fields"),
        }
        .into());
    }
    remove_dir(scratch)?;
    std::fs::create_dir_all(scratch).map_err(io(scratch))?;
    let bucket_path = |b: u64| scratch.join(format!("bucket.{b:05}"));
    let mut buckets = (0..BUCKETS)
        .map(|b| {
            let path = bucket_path(b);
            File::create(&path)
                .map(|f| BufWriter::with_capacity(64 << 10, f))
                .map_err(io(&path))
        })
        .collect::<Result<Vec<_>, _>>()?;

    // Pass 1: this task's rows into the buckets.
    let world = task.world_size as u64;
    let mut bytes_read = 0;
    for (file_index, file) in files.iter().enumerate() {
        let owns_file = file_index % task.world_size == task.rank;
        for record in read_documents(file, fields)? {
            let doc = match record {
                Ok(Document {
                    file_of: Some(of),
                    text,
                    ..
                }) => (of, text),
                Ok(Document { id, .. }) => {
                    // A reader that cannot name a repository (a .txt file).
                    if owns_file {
                        emit(Err(Skipped {
                            reason: SkipReason::MissingGroupField,
                            file: file.clone(),
                            line: 0,
                            detail: format!("{id}: no repository"),
                        }))?;
                    }
                    continue;
                }
                Err(skip) => {
                    if owns_file {
                        emit(Err(skip))?;
                    }
                    continue;
                }
            };
            let hash = xxhash_rust::xxh3::xxh3_64(doc.0.repo.as_bytes());
            if hash % world != task.rank as u64 {
                continue;
            }
            let b = (hash / world) % BUCKETS;
            let (of, text) = doc;
            write_row(&mut buckets[b as usize], &of, &text, file_index as u32)
                .map_err(io(&bucket_path(b)))?;
        }
        bytes_read += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        on_file(bytes_read);
    }
    for (b, writer) in buckets.into_iter().enumerate() {
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io(&bucket_path(b as u64)))?;
    }

    // Pass 2: one bucket at a time, one document per repository.
    for b in 0..BUCKETS {
        let path = bucket_path(b);
        let mut rows = read_rows(&path).map_err(io(&path))?;
        std::fs::remove_file(&path).map_err(io(&path))?;
        // Stable: rows of one repository and path keep their input order.
        rows.sort_by(|x, y| (&x.repo, &x.path).cmp(&(&y.repo, &y.path)));
        let mut start = 0;
        while start < rows.len() {
            let end = start + rows[start..].partition_point(|r| r.repo == rows[start].repo);
            emit_repository(&rows[start..end], files, &mut emit)?;
            start = end;
        }
    }
    remove_dir(scratch)?;
    Ok(())
}

/// The document of one repository's rows (sorted by path), and its skips.
fn emit_repository<E>(
    rows: &[Row],
    files: &[PathBuf],
    emit: &mut impl FnMut(Record) -> Result<(), E>,
) -> Result<(), E> {
    let skip = |row: &Row, reason, detail: String| Skipped {
        reason,
        file: files[row.file as usize].clone(),
        line: row.line,
        detail: format!("{} {}: {detail}", row.repo, row.path),
    };
    let mut kept: Vec<(&str, &str)> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if i > 0 && rows[i - 1].path == row.path {
            emit(Err(skip(
                row,
                SkipReason::DuplicatePath,
                "a second row of this path".into(),
            )))?;
        } else if row.text.lines().any(is_header_like) {
            emit(Err(skip(
                row,
                SkipReason::HeaderCollision,
                "a line of the `==> PATH <==` form".into(),
            )))?;
        } else {
            kept.push((&row.path, &row.text));
        }
    }
    if kept.is_empty() {
        return Ok(());
    }
    emit(Ok(Document {
        id: rows[0].repo.clone(),
        text: render(kept),
        file_of: None,
    }))
}

fn remove_dir(dir: &Path) -> Result<(), DocumentError> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(DocumentError::Open {
            path: dir.into(),
            err,
        }),
        _ => Ok(()),
    }
}

/// A row as `u32 len, repo, u32 len, path, u64 len, text, u32 file, u64 line`
/// (little-endian).
fn write_row(w: &mut impl Write, of: &RepoFile, text: &str, file: u32) -> std::io::Result<()> {
    w.write_all(&(of.repo.len() as u32).to_le_bytes())?;
    w.write_all(of.repo.as_bytes())?;
    w.write_all(&(of.path.len() as u32).to_le_bytes())?;
    w.write_all(of.path.as_bytes())?;
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(text.as_bytes())?;
    w.write_all(&file.to_le_bytes())?;
    w.write_all(&of.line.to_le_bytes())
}

fn read_rows(path: &Path) -> std::io::Result<Vec<Row>> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut rows = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(rows),
            other => other?,
        }
        let repo = read_string(&mut r, u32::from_le_bytes(len) as u64)?;
        r.read_exact(&mut len)?;
        let path = read_string(&mut r, u32::from_le_bytes(len) as u64)?;
        let mut len8 = [0u8; 8];
        r.read_exact(&mut len8)?;
        let text = read_string(&mut r, u64::from_le_bytes(len8))?;
        r.read_exact(&mut len)?;
        let file = u32::from_le_bytes(len);
        r.read_exact(&mut len8)?;
        rows.push(Row {
            repo,
            path,
            text,
            file,
            line: u64::from_le_bytes(len8),
        });
    }
}

fn read_string(r: &mut impl Read, len: u64) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
