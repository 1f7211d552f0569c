//! The bytes of one uncompressed shard: sample count, offsets, config, samples.

use crate::index::Column;
use crate::value::Value;

/// Header of a raw shard, checked against the file length. Offsets are read
/// from the bytes on demand, so opening a shard touches only its first page.
#[derive(Debug, Clone, Copy)]
pub struct ShardHeader {
    pub samples: usize,
}

impl ShardHeader {
    /// Reads the sample count and checks the offset table against `data`.
    /// Every offset is checked here (O(samples), once per shard) so that
    /// sample access later needs no checks beyond a slice.
    pub fn parse(data: &[u8]) -> Result<ShardHeader, String> {
        let n = read_u32(data, 0).ok_or("shorter than its 4-byte sample count")? as usize;
        let table_end = 4 + 4 * (n + 1);
        if data.len() < table_end {
            return Err(format!(
                "{} bytes cannot hold the offsets of {n} samples",
                data.len()
            ));
        }
        let header = ShardHeader { samples: n };
        let first = header.offset(data, 0) as usize;
        if first < table_end {
            return Err(format!("first sample offset {first} is inside the header"));
        }
        let mut prev = first;
        for i in 1..=n {
            let off = header.offset(data, i) as usize;
            if off < prev {
                return Err(format!(
                    "offset {i} ({off}) is before offset {} ({prev})",
                    i - 1
                ));
            }
            prev = off;
        }
        if prev != data.len() {
            return Err(format!(
                "last offset {prev} does not match the shard's {} bytes",
                data.len()
            ));
        }
        Ok(header)
    }

    fn offset(&self, data: &[u8], i: usize) -> u32 {
        read_u32(data, 4 + 4 * i).unwrap_or(0)
    }

    /// The config JSON between the offset table and the first sample.
    pub fn config<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[4 + 4 * (self.samples + 1)..self.offset(data, 0) as usize]
    }

    /// The bytes of sample `i`; `i` must be below `samples`.
    pub fn sample<'a>(&self, data: &'a [u8], i: usize) -> &'a [u8] {
        &data[self.offset(data, i) as usize..self.offset(data, i + 1) as usize]
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Splits one sample's bytes into its columns' encoded bytes.
pub fn split_sample<'a>(columns: &[Column], sample: &'a [u8]) -> Result<Vec<&'a [u8]>, String> {
    let variable = columns
        .iter()
        .filter(|c| c.encoding.fixed_size().is_none())
        .count();
    let mut pos = 4 * variable;
    if sample.len() < pos {
        return Err(format!(
            "{} bytes cannot hold {variable} column sizes",
            sample.len()
        ));
    }
    let mut next_size = 0;
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let size = match column.encoding.fixed_size() {
            Some(size) => size,
            None => {
                let size = read_u32(sample, 4 * next_size).unwrap_or(0) as usize;
                next_size += 1;
                size
            }
        };
        let field = pos
            .checked_add(size)
            .and_then(|end| sample.get(pos..end))
            .ok_or_else(|| format!("column {:?} runs past the end of the sample", column.name))?;
        fields.push(field);
        pos += size;
    }
    if pos != sample.len() {
        return Err(format!(
            "columns cover {pos} of the sample's {} bytes",
            sample.len()
        ));
    }
    Ok(fields)
}

/// Decodes every column of every sample of a raw shard, handing each sample's
/// values to `visit`. The error carries the sample it happened in, if any.
pub fn decode_shard<'a>(
    data: &'a [u8],
    columns: &[Column],
    mut visit: impl FnMut(usize, &[(&str, Value<'a>)]) -> Result<(), String>,
) -> Result<ShardHeader, (Option<usize>, String)> {
    let header = ShardHeader::parse(data).map_err(|e| (None, e))?;
    let mut values = Vec::with_capacity(columns.len());
    for i in 0..header.samples {
        let fields = split_sample(columns, header.sample(data, i)).map_err(|e| (Some(i), e))?;
        values.clear();
        for (column, bytes) in columns.iter().zip(fields) {
            let value = column
                .encoding
                .decode(bytes)
                .map_err(|r| (Some(i), format!("column {:?}: {r}", column.name)))?;
            values.push((column.name.as_str(), value));
        }
        visit(i, &values).map_err(|e| (Some(i), e))?;
    }
    Ok(header)
}
