//! Random access to the samples of a dataset folder (plain or merged).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::atomic::write_atomic_with;
use crate::error::{MdsError, Result};
use crate::hash::check_hashes;
use crate::index::{Column, FileInfo, Index, ShardEntry, safe_relative};
use crate::shard::{ShardHeader, split_sample};
use crate::value::{Array, Value};

/// An opened dataset. Shards are opened on first use: raw shards are mapped
/// into memory, compressed ones decompressed once into a cache file beside
/// them (or into memory when the folder is read-only).
pub struct MdsDataset {
    dir: PathBuf,
    index: Index,
    shards: Vec<ShardSlot>,
    /// `starts[s]` = global index of shard s's first sample; one extra at the end.
    starts: Vec<usize>,
    /// Whether a decompressed shard is cached beside its zip file.
    cache: bool,
}

struct ShardSlot {
    columns: Vec<Column>,
    raw_path: PathBuf,
    zip_path: Option<PathBuf>,
    entry: ShardEntry,
    open: OnceLock<OpenShard>,
}

struct OpenShard {
    data: ShardData,
    header: ShardHeader,
}

pub(crate) enum ShardData {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for ShardData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ShardData::Mapped(m) => m,
            ShardData::Owned(v) => v,
        }
    }
}

impl MdsDataset {
    /// Opens `dir/index.json`. Shard basenames may point into sub-folders
    /// (a merged root such as ProLong's `procNN-64/` layout).
    pub fn open(dir: impl AsRef<Path>) -> Result<MdsDataset> {
        Self::open_with(dir.as_ref(), true)
    }

    /// Opens `dir/index.json` for a reader that writes nothing: compressed
    /// shards are decompressed in memory only (no cache file beside them,
    /// which would double the disk a dataset takes). Pair it with
    /// [`MdsDataset::release_shard`] to hold one shard at a time.
    pub fn open_uncached(dir: impl AsRef<Path>) -> Result<MdsDataset> {
        Self::open_with(dir.as_ref(), false)
    }

    fn open_with(dir: &Path, cache: bool) -> Result<MdsDataset> {
        let dir = dir.to_path_buf();
        let index = Index::load(&dir)?;
        let mut shards = Vec::with_capacity(index.shards.len());
        let mut starts = vec![0usize];
        for entry in &index.shards {
            // Paths and columns were checked when the index was parsed.
            let rel = |b: &str| safe_relative(b).map(|p| dir.join(p)).unwrap_or_default();
            shards.push(ShardSlot {
                columns: entry.columns().unwrap_or_default(),
                raw_path: rel(&entry.raw_data.basename),
                zip_path: entry.zip_data.as_ref().map(|z| rel(&z.basename)),
                entry: entry.clone(),
                open: OnceLock::new(),
            });
            starts.push(starts.last().copied().unwrap_or(0) + entry.samples as usize);
        }
        Ok(MdsDataset {
            dir,
            index,
            shards,
            starts,
            cache,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn len(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// The columns of the first shard (every shard of a dataset written by one
    /// writer has the same).
    pub fn columns(&self) -> &[Column] {
        self.shards
            .first()
            .map(|s| s.columns.as_slice())
            .unwrap_or(&[])
    }

    /// Which shard holds global sample `i`, and its index within that shard.
    pub fn locate(&self, i: usize) -> Result<(usize, usize)> {
        if i >= self.len() {
            return Err(MdsError::OutOfRange {
                index: i,
                len: self.len(),
            });
        }
        let shard = self.starts.partition_point(|&s| s <= i) - 1;
        Ok((shard, i - self.starts[shard]))
    }

    /// Sample `i`, reading only that sample's bytes.
    pub fn get(&self, i: usize) -> Result<Sample<'_>> {
        let (shard, local) = self.locate(i)?;
        self.get_in_shard(shard, local)
    }

    /// Sample `local` of shard `shard`.
    pub fn get_in_shard(&self, shard: usize, local: usize) -> Result<Sample<'_>> {
        let slot = &self.shards[shard];
        let open = self.open_shard(shard)?;
        if local >= open.header.samples {
            return Err(MdsError::OutOfRange {
                index: local,
                len: open.header.samples,
            });
        }
        let bytes = open.header.sample(&open.data, local);
        let fields = split_sample(&slot.columns, bytes).map_err(|reason| MdsError::BadSample {
            path: slot.raw_path.clone(),
            sample: local,
            reason,
        })?;
        Ok(Sample {
            columns: &slot.columns,
            fields,
            path: &slot.raw_path,
            local,
        })
    }

    /// Every sample in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<Sample<'_>>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Drops shard `shard`'s bytes (mapped or decompressed) once a pass is done
    /// with it; a later access opens (and checks) it again.
    pub fn release_shard(&mut self, shard: usize) {
        if let Some(slot) = self.shards.get_mut(shard) {
            slot.open.take();
        }
    }

    /// The raw (uncompressed) bytes of shard `shard`, its header checked.
    pub fn shard_bytes(&self, shard: usize) -> Result<&[u8]> {
        Ok(&self.open_shard(shard)?.data)
    }

    fn open_shard(&self, shard: usize) -> Result<&OpenShard> {
        let slot = &self.shards[shard];
        if let Some(open) = slot.open.get() {
            return Ok(open);
        }
        let data = load_raw(slot, self.cache)?;
        let header = ShardHeader::parse(&data).map_err(|reason| MdsError::BadShard {
            path: slot.raw_path.clone(),
            reason,
        })?;
        if header.samples as u64 != slot.entry.samples {
            return Err(MdsError::BadShard {
                path: slot.raw_path.clone(),
                reason: format!(
                    "holds {} samples, index.json says {}",
                    header.samples, slot.entry.samples
                ),
            });
        }
        // Another thread may have opened it meanwhile; either copy is the same.
        let _ = slot.open.set(OpenShard { data, header });
        Ok(slot.open.get().expect("just set"))
    }
}

/// The raw bytes of a shard: mapped when a raw file of the right size exists,
/// else decompressed from the zip file (and cached beside it when possible).
/// Every hash index.json records for the bytes used is checked here, once per
/// shard and process, so no reader hands on data its index does not vouch for.
fn load_raw(slot: &ShardSlot, cache: bool) -> Result<ShardData> {
    let raw_info = &slot.entry.raw_data;
    let raw_ok = std::fs::metadata(&slot.raw_path).is_ok_and(|m| m.len() == raw_info.bytes);
    let (zip_path, zip_info) = match (&slot.zip_path, &slot.entry.zip_data) {
        (Some(path), Some(info)) if !raw_ok => (path, info),
        _ => {
            let data = map_file(&slot.raw_path)?;
            check_size(&slot.raw_path, data.len(), raw_info)?;
            check_hashes(&slot.raw_path, &data, raw_info)?;
            return Ok(data);
        }
    };
    let raw = read_zip(zip_path, zip_info, &slot.raw_path, raw_info)?;
    if !cache {
        return Ok(ShardData::Owned(raw));
    }
    // Cache the raw shard for the next process; two racing processes write the
    // same bytes to different temporary names and the last rename wins. Not
    // synced: a cache lost in a crash is decompressed again (its size and
    // hashes are checked when it is read).
    let cached = write_atomic_with(&slot.raw_path, false, |w| {
        std::io::Write::write_all(w, &raw)
    });
    if cached.is_ok()
        && let Ok(mapped) = map_file(&slot.raw_path)
    {
        return Ok(mapped);
    }
    Ok(ShardData::Owned(raw))
}

/// The raw bytes of shard `entry` of the dataset folder `dir`, read into `buf`
/// with plain reads: the raw file when one of the recorded size exists, else
/// the zip file decompressed in memory (nothing is written beside it). Sizes
/// and every recorded hash are checked, so a stage that copies these bytes on
/// never vouches with a fresh hash for data it did not verify.
pub fn read_shard_raw(dir: &Path, entry: &ShardEntry, buf: &mut Vec<u8>) -> Result<()> {
    let path = |info: &FileInfo| dir.join(safe_relative(&info.basename).unwrap_or_default());
    let raw_info = &entry.raw_data;
    let raw_path = path(raw_info);
    let raw_ok = std::fs::metadata(&raw_path).is_ok_and(|m| m.len() == raw_info.bytes);
    match &entry.zip_data {
        Some(zip_info) if !raw_ok => {
            *buf = read_zip(&path(zip_info), zip_info, &raw_path, raw_info)?;
        }
        _ => {
            use std::io::Read;
            let mut file =
                std::fs::File::open(&raw_path).map_err(|e| MdsError::io(&raw_path, e))?;
            let len = file
                .metadata()
                .map_err(|e| MdsError::io(&raw_path, e))?
                .len();
            check_size(&raw_path, len as usize, raw_info)?;
            buf.clear();
            file.read_to_end(buf)
                .map_err(|e| MdsError::io(&raw_path, e))?;
            check_size(&raw_path, buf.len(), raw_info)?;
            check_hashes(&raw_path, buf, raw_info)?;
        }
    }
    Ok(())
}

/// Reads a zip file, checks its size and hashes, decompresses it and checks
/// the raw bytes' size and hashes (reported under the raw file's name).
fn read_zip(
    zip_path: &Path,
    zip_info: &FileInfo,
    raw_path: &Path,
    raw_info: &FileInfo,
) -> Result<Vec<u8>> {
    let zipped = std::fs::read(zip_path).map_err(|e| MdsError::io(zip_path, e))?;
    check_size(zip_path, zipped.len(), zip_info)?;
    check_hashes(zip_path, &zipped, zip_info)?;
    let raw = decompress(&zipped, raw_info.bytes).map_err(|reason| MdsError::BadShard {
        path: zip_path.to_path_buf(),
        reason,
    })?;
    check_hashes(raw_path, &raw, raw_info)?;
    Ok(raw)
}

fn check_size(path: &Path, len: usize, info: &FileInfo) -> Result<()> {
    if len as u64 != info.bytes {
        return Err(MdsError::BadShard {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, index.json says {}", info.bytes),
        });
    }
    Ok(())
}

/// Decompresses a zstd shard that index.json says holds `raw_bytes` bytes.
/// The output grows with what the data really decompresses to (never
/// preallocated from the recorded size, which may be absurd), and stops one
/// byte past `raw_bytes`.
pub(crate) fn decompress(zipped: &[u8], raw_bytes: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder =
        zstd::stream::read::Decoder::with_buffer(zipped).map_err(|e| format!("zstd: {e}"))?;
    // A start that a real shard seldom outgrows; more only as data arrives.
    let guess = (zipped.len() as u64).saturating_mul(4).min(raw_bytes);
    let mut raw = Vec::with_capacity(guess as usize);
    decoder
        .take(raw_bytes.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| format!("zstd: {e}"))?;
    if raw.len() as u64 != raw_bytes {
        return Err(if raw.len() as u64 > raw_bytes {
            format!("decompresses to more than the {raw_bytes} bytes index.json says")
        } else {
            format!(
                "decompresses to {} bytes, index.json says {raw_bytes}",
                raw.len()
            )
        });
    }
    Ok(raw)
}

fn map_file(path: &Path) -> Result<ShardData> {
    let file = std::fs::File::open(path).map_err(|e| MdsError::io(path, e))?;
    let len = file.metadata().map_err(|e| MdsError::io(path, e))?.len();
    if len == 0 {
        // mmap of an empty file fails on some systems; the header check reports it.
        return Ok(ShardData::Owned(Vec::new()));
    }
    // SAFETY: shards are written once under a temporary name and renamed into
    // place, never modified in place; a reader maps a finished file.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| MdsError::io(path, e))?;
    Ok(ShardData::Mapped(map))
}

/// One sample: its columns' encoded bytes, borrowed from the shard.
pub struct Sample<'a> {
    columns: &'a [Column],
    fields: Vec<&'a [u8]>,
    path: &'a Path,
    local: usize,
}

impl<'a> Sample<'a> {
    fn field(&self, name: &str) -> Result<(&'a Column, &'a [u8])> {
        let i = self
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| MdsError::NoColumn(name.into()))?;
        Ok((&self.columns[i], self.fields[i]))
    }

    fn bad(&self, column: &str, reason: String) -> MdsError {
        MdsError::BadSample {
            path: self.path.to_path_buf(),
            sample: self.local,
            reason: format!("column {column:?}: {reason}"),
        }
    }

    /// The column's value, decoded (byte payloads borrowed).
    pub fn get(&self, name: &str) -> Result<Value<'a>> {
        let (column, bytes) = self.field(name)?;
        column.encoding.decode(bytes).map_err(|r| self.bad(name, r))
    }

    /// Whether the sample has this column.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }

    /// An ndarray column.
    pub fn array(&self, name: &str) -> Result<Array<'a>> {
        match self.get(name)? {
            Value::Array(a) => Ok(a),
            other => Err(self.bad(name, format!("not an ndarray: {other:?}"))),
        }
    }

    /// A uint32 ndarray column (input_ids, indices) as u32 values, without a
    /// copy when the bytes are aligned.
    pub fn u32s(&self, name: &str) -> Result<Cow<'a, [u32]>> {
        let a = self.array(name)?;
        let dtype = a.dtype;
        match a.data {
            Cow::Borrowed(b) if dtype == crate::Dtype::U32 => Ok(crate::value::cast_or_copy(b)),
            _ => Err(self.bad(name, format!("expected uint32 values, got {dtype}"))),
        }
    }

    /// An integer column, whichever integer encoding stores it.
    pub fn integer(&self, name: &str) -> Result<i128> {
        let v = self.get(name)?;
        v.as_integer()
            .ok_or_else(|| self.bad(name, "not an integer".into()))
    }

    /// A str column.
    pub fn str(&self, name: &str) -> Result<&'a str> {
        match self.get(name)? {
            Value::Str(Cow::Borrowed(s)) => Ok(s),
            _ => Err(self.bad(name, "not a str column".into())),
        }
    }

    /// Every column decoded, in column order.
    pub fn values(&self) -> Result<Vec<(&'a str, Value<'a>)>> {
        self.columns
            .iter()
            .map(|c| Ok((c.name.as_str(), self.get(&c.name)?)))
            .collect()
    }

    pub fn columns(&self) -> &'a [Column] {
        self.columns
    }
}
