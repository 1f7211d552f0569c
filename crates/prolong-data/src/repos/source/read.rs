//! Reading one listed file, bounded by a size and checked to still be the
//! regular file that was listed.

use std::io::Read;
use std::path::Path;

use super::super::filters::Skip;

/// Whether two listings are of the same file (device and inode).
#[cfg(unix)]
pub(super) fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
pub(super) fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// The skip reason of a failed read: gone since listed, or unreadable.
pub(super) fn io_skip(e: &std::io::Error) -> Skip {
    if e.kind() == std::io::ErrorKind::NotFound {
        Skip::Vanished
    } else {
        Skip::Unreadable
    }
}

/// Reads a regular file that was listed by the walk: `None` when larger than
/// `max` bytes (not read).
pub(super) fn read_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>, (Skip, String)> {
    let io = |e: std::io::Error| (io_skip(&e), e.to_string());
    let listed = std::fs::symlink_metadata(path).map_err(io)?;
    if !listed.is_file() {
        // Swapped for a link, a folder or a fifo since the walk listed it.
        return Err((Skip::Unreadable, "no longer a regular file".to_string()));
    }
    if listed.len() > max {
        return Ok(None);
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    if !same_inode(&opened, &listed) {
        return Err((Skip::Unreadable, "replaced while being read".to_string()));
    }
    if !opened.is_file() {
        return Err((Skip::Unreadable, "no longer a regular file".to_string()));
    }
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        // Grew while being read.
        return Ok(None);
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_file_reports_vanished_and_non_regular() {
        let tmp = std::env::temp_dir().join(format!("repos-read-file-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let gone = tmp.join("gone.txt");
        let err = read_file(&gone, 100).unwrap_err();
        assert_eq!(err.0, Skip::Vanished);
        let err = read_file(&tmp, 100).unwrap_err();
        assert_eq!(err.0, Skip::Unreadable);
        let file = tmp.join("f.txt");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_file(&file, 4).unwrap(), None);
        assert_eq!(read_file(&file, 5).unwrap(), Some(b"12345".to_vec()));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
