//! HF-layout checkpoints: `config.json` + `model.safetensors`, or sharded
//! `model-0000N-of-0000M.safetensors` with `model.safetensors.index.json`.
//!
//! Saving follows transformers' `save_pretrained`: tensors in the model's order go into
//! a shard until the next one would take it past the maximum shard size (a tensor larger
//! than the maximum gets a shard of its own); one shard is written as
//! `model.safetensors` without an index, several as numbered shards plus an index whose
//! `metadata.total_size` is the bytes of all tensors and whose `weight_map` names each
//! tensor's shard.
//!
//! Each file is what candle's `safetensors::save` writes for its tensors, byte for byte,
//! but written tensor by tensor as the tensors are handed over ([`WeightsWriter`]): its
//! layout (header and every tensor's offset) follows from names, shapes and dtype alone,
//! so no file is ever assembled in memory.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

pub(crate) use crate::atomic::write_atomic;
use crate::config::LlamaConfig;
use crate::error::{Error, Result};
use crate::model::{Llama, LlamaParams};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// transformers' default `max_shard_size` ("5GB").
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5_000_000_000;

impl Llama {
    /// Loads `dir/config.json` and the weights (single file or sharded), converting them
    /// to `dtype` on `device`.
    pub fn load(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = LlamaConfig::load(dir.join(CONFIG_FILE))?;
        let mut tensors = load_tensors(dir)?;
        let params = LlamaParams::from_named(&config, |n| tensors.remove(n), dtype, device)?;
        Self::new(config, params)
    }

    /// [`save_sharded`](Self::save_sharded) with transformers' default 5 GB shards.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_sharded(dir, DEFAULT_MAX_SHARD_BYTES)
    }

    /// Writes `dir/config.json` and the weights (HF names, the model's dtype) in shards of
    /// at most `max_shard_bytes` (see the module docs) through a [`WeightsWriter`]. Every
    /// file appears whole ([`prolong_mds::FileWrite`]: a tagged temporary name, synced,
    /// renamed, the folder synced); the index follows its shards, files of an earlier save
    /// that the new one does not use are removed after it, and the config goes last, so
    /// the directory always holds one complete set of weights.
    pub fn save_sharded(&self, dir: impl AsRef<Path>, max_shard_bytes: u64) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            err: source,
        })?;
        let named = self.params().named();
        let shapes: Vec<(String, Vec<usize>)> = named
            .iter()
            .map(|(n, t)| (n.clone(), t.dims().to_vec()))
            .collect();
        let mut writer = WeightsWriter::new(dir, &shapes, self.dtype(), max_shard_bytes);
        for (name, t) in named {
            writer.push(&name, t)?;
        }
        writer.finish(self.config())
    }
}

/// Which file of an HF checkpoint each tensor goes into, from the tensors' names,
/// shapes and dtype alone (transformers' rule: in the model's order, a new file when
/// the next tensor would take the current one past `max_bytes`; an oversized tensor
/// alone), so that weights held one part at a time are written in the files a whole
/// model's [`save_sharded`](Llama::save_sharded) writes.
pub struct ShardPlan {
    /// Name, shape and bytes of each tensor, in the model's order.
    tensors: Vec<(String, Vec<usize>, u64)>,
    dtype: DType,
    /// The positions in `tensors` of each file's tensors.
    files: Vec<Range<usize>>,
}

impl ShardPlan {
    pub fn new(shapes: &[(String, Vec<usize>)], dtype: DType, max_bytes: u64) -> Self {
        let tensors: Vec<(String, Vec<usize>, u64)> = shapes
            .iter()
            .map(|(n, shape)| {
                let numel: usize = shape.iter().product();
                (
                    n.clone(),
                    shape.clone(),
                    (numel * dtype.size_in_bytes()) as u64,
                )
            })
            .collect();
        let mut files: Vec<Range<usize>> = Vec::new();
        let mut size = 0u64;
        for (k, &(_, _, b)) in tensors.iter().enumerate() {
            match files.last_mut() {
                Some(current) if size + b <= max_bytes => {
                    current.end = k + 1;
                    size += b;
                }
                _ => {
                    files.push(k..k + 1);
                    size = b;
                }
            }
        }
        Self {
            tensors,
            dtype,
            files,
        }
    }

    /// How many files.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// The name of file `i`: `model.safetensors` when it is the only one.
    pub fn file_name(&self, i: usize) -> String {
        let n = self.files.len();
        if n == 1 {
            WEIGHTS_FILE.to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", i + 1)
        }
    }

    /// `model.safetensors.index.json` (for several files): the bytes of all tensors and
    /// each tensor's file.
    fn index(&self) -> serde_json::Value {
        let mut weight_map = serde_json::Map::new();
        for (i, r) in self.files.iter().enumerate() {
            let file = self.file_name(i);
            for (name, _, _) in &self.tensors[r.clone()] {
                weight_map.insert(name.clone(), file.clone().into());
            }
        }
        serde_json::json!({
            "metadata": { "total_size": self.tensors.iter().map(|t| t.2).sum::<u64>() },
            "weight_map": weight_map,
        })
    }

    /// The layout of file `i`: its safetensors header (the JSON's length in 8 bytes,
    /// then the JSON padded with spaces to a multiple of 8) and the offset in the file
    /// of each of its tensors, in the plan's order. It is the layout the safetensors
    /// crate's `serialize_to_file` (behind candle's `safetensors::save`) gives these
    /// tensors: sorted by dtype (one here), then name, back to back after the header,
    /// which is that crate's own `Metadata` serialised; so the file is the one it
    /// writes, byte for byte. The error says why the header cannot be made.
    fn layout(&self, i: usize) -> std::result::Result<(Vec<u8>, Vec<u64>), String> {
        use safetensors::tensor::{Metadata, TensorInfo};
        // safetensors' limit on a header's length (its readers refuse longer ones).
        const MAX_HEADER_BYTES: usize = 100_000_000;
        let r = self.files[i].clone();
        let mut order: Vec<usize> = r.clone().collect();
        order.sort_by(|&a, &b| self.tensors[a].0.cmp(&self.tensors[b].0));
        let mut at = vec![0u64; r.len()];
        let mut infos = Vec::with_capacity(r.len());
        let mut offset = 0usize;
        for k in order {
            let (name, shape, bytes) = &self.tensors[k];
            let end = offset + *bytes as usize;
            let info = TensorInfo {
                dtype: self.dtype.into(),
                shape: shape.clone(),
                data_offsets: (offset, end),
            };
            infos.push((name.clone(), info));
            at[k - r.start] = offset as u64;
            offset = end;
        }
        let meta = Metadata::new(None, infos).map_err(|e| e.to_string())?;
        let mut json = serde_json::to_string(&meta)
            .map_err(|e| e.to_string())?
            .into_bytes();
        json.resize(json.len().next_multiple_of(8), b' ');
        if json.len() > MAX_HEADER_BYTES {
            return Err(format!(
                "a safetensors header of {} bytes, over the format's {MAX_HEADER_BYTES}",
                json.len()
            ));
        }
        let mut header = (json.len() as u64).to_le_bytes().to_vec();
        header.extend(json);
        let data_start = header.len() as u64;
        Ok((header, at.into_iter().map(|o| data_start + o).collect()))
    }
}

/// Writes the weights of an HF checkpoint (the files of a [`ShardPlan`]) from tensors
/// handed over in the model's order, each tensor into its file as soon as it is handed
/// over: a file is begun at its first tensor ([`prolong_mds::FileWrite`]: a tagged
/// temporary name; its header, which the plan fixes, written first), each tensor's
/// bytes go to the offset the header gives it, and the file is synced and renamed (the
/// folder synced) at its last. It keeps no tensor: the caller may free what it handed
/// over as soon as `push` returns. What [`Llama::save_sharded`] writes, and what a
/// sharded trainer writes from one gathered unit at a time.
pub struct WeightsWriter {
    dir: PathBuf,
    plan: ShardPlan,
    /// The next tensor expected (position in the plan).
    next: usize,
    /// The file being written, from its first tensor to its last, and the offset of
    /// each of its tensors (in the plan's order).
    open: Option<(prolong_mds::FileWrite, Vec<u64>)>,
    /// Elements of a tensor copied to the host at a time.
    chunk: usize,
}

/// Elements of a tensor copied to the host for writing at a time ([`WeightsWriter`]):
/// 32 MiB in bf16, so the copy stays small beside a unit (Llama-3-8B's embedding alone
/// is 1 GB).
const WRITE_CHUNK_ELEMS: usize = 1 << 24;

impl WeightsWriter {
    /// A writer of `shapes` (name and shape of every tensor, in the model's order) in
    /// `dtype` into the existing folder `dir`, in files of at most `max_bytes`.
    pub fn new(dir: &Path, shapes: &[(String, Vec<usize>)], dtype: DType, max_bytes: u64) -> Self {
        Self {
            dir: dir.into(),
            plan: ShardPlan::new(shapes, dtype, max_bytes),
            next: 0,
            open: None,
            chunk: WRITE_CHUNK_ELEMS,
        }
    }

    /// [`new`](Self::new) copying `chunk` elements to the host at a time (tests: many
    /// chunks in a small tensor).
    #[cfg(test)]
    fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk;
        self
    }

    /// Writes the next tensor in the model's order (it must be the one the plan
    /// expects, of the planned size) into its file: begins the file at its first
    /// tensor, puts the file in place at its last.
    pub fn push(&mut self, name: &str, t: &Tensor) -> Result<()> {
        let expected = match self.plan.tensors.get(self.next) {
            Some((n, _, b)) if n == name && *b == bytes(t) => None,
            Some((n, _, b)) => Some(format!("`{n}` of {b} bytes")),
            None => Some("no more tensors".into()),
        };
        if let Some(expected) = expected {
            return Err(Error::Checkpoint {
                path: self.dir.clone(),
                msg: format!(
                    "tensor `{name}` of {} bytes handed over where the plan has {expected}",
                    bytes(t)
                ),
            });
        }
        let i = self.plan.files.partition_point(|r| r.end <= self.next);
        let first = self.plan.files[i].start;
        let (mut file, at) = match self.open.take() {
            Some(open) => open,
            None => {
                let path = self.dir.join(self.plan.file_name(i));
                let (header, at) = self.plan.layout(i).map_err(|msg| Error::Checkpoint {
                    path: path.clone(),
                    msg,
                })?;
                let mut file = prolong_mds::FileWrite::begin(&path)?;
                file.write_at(0, &header)?;
                (file, at)
            }
        };
        // The bytes candle's `safetensors::save` writes for the tensor (its elements in
        // order, as the host copy `View::data` makes), a chunk at a time.
        let flat = t.flatten_all()?;
        let n = flat.elem_count();
        let mut offset = at[self.next - first];
        for start in (0..n).step_by(self.chunk) {
            let part = flat.narrow(0, start, self.chunk.min(n - start))?;
            let data = safetensors::View::data(&part);
            file.write_at(offset, &data)?;
            offset += data.len() as u64;
        }
        self.next += 1;
        if self.next == self.plan.files[i].end {
            file.commit()?;
        } else {
            self.open = Some((file, at));
        }
        Ok(())
    }

    /// After the last tensor: the index (for several files), the removal of the weight
    /// files of an earlier save into the folder that this one does not use, then
    /// `config.json`, so the folder always holds one complete set of weights.
    pub fn finish(self, config: &LlamaConfig) -> Result<()> {
        if self.next != self.plan.tensors.len() {
            return Err(Error::Checkpoint {
                path: self.dir,
                msg: format!(
                    "{} of {} tensors handed over",
                    self.next,
                    self.plan.tensors.len()
                ),
            });
        }
        let n = self.plan.files();
        if n > 1 {
            let index_path = self.dir.join(INDEX_FILE);
            let text =
                serde_json::to_string_pretty(&self.plan.index()).map_err(|source| Error::Json {
                    path: index_path.clone(),
                    err: source,
                })?;
            write_atomic(&index_path, text.as_bytes())?;
        }
        let files: Vec<String> = (0..n).map(|i| self.plan.file_name(i)).collect();
        remove_stale_weights(&self.dir, &files)?;
        config.save(self.dir.join(CONFIG_FILE))
    }
}

/// Bytes of a tensor's data.
fn bytes(t: &Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

/// Removes the weight files and index of an earlier save into `dir` that are not among
/// `keep` (a single file replacing shards, or a different number of shards).
fn remove_stale_weights(dir: &Path, keep: &[String]) -> Result<()> {
    let io = |path: PathBuf| move |source| Error::Io { path, err: source };
    let sharded = keep.len() > 1;
    for entry in std::fs::read_dir(dir).map_err(io(dir.into()))? {
        let entry = entry.map_err(io(dir.into()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name == INDEX_FILE {
            !sharded
        } else {
            let weights = name == WEIGHTS_FILE
                || (name.starts_with("model-") && name.ends_with(".safetensors"));
            weights && !keep.contains(&name)
        };
        if stale {
            std::fs::remove_file(entry.path()).map_err(io(entry.path()))?;
        }
    }
    Ok(())
}

/// Every tensor of the checkpoint in `dir`, by name (sharded when the index file exists).
pub fn load_tensors(dir: impl AsRef<Path>) -> Result<HashMap<String, Tensor>> {
    let dir = dir.as_ref();
    let index = dir.join(INDEX_FILE);
    if !index.exists() {
        return load_file(&dir.join(WEIGHTS_FILE));
    }
    let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
        path: index.clone(),
        err: source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: index.clone(),
        err: source,
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::Checkpoint {
            path: index.clone(),
            msg: "no `weight_map` object".into(),
        })?;
    let mut files = BTreeSet::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| Error::Checkpoint {
            path: index.clone(),
            msg: format!("file of tensor `{name}` is not a string"),
        })?;
        files.insert(file.to_string());
    }
    let mut tensors = HashMap::new();
    for file in files {
        tensors.extend(load_file(&dir.join(&file))?);
    }
    for (name, file) in map {
        if !tensors.contains_key(name) {
            return Err(Error::Checkpoint {
                path: index,
                msg: format!("tensor `{name}` is not in its shard {file}"),
            });
        }
    }
    Ok(tensors)
}

fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    // The OS's own words ("No such file or directory"), not a bare ErrorKind's.
    if let Err(source) = std::fs::metadata(path) {
        return Err(Error::Io {
            path: path.into(),
            err: source,
        });
    }
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::Checkpoint {
        path: path.into(),
        msg: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file streamed tensor by tensor, in several host copies each, is what candle's
    /// `safetensors::save` writes for the same tensors, byte for byte; in bf16 and f32,
    /// with names whose sorted order (the file's) is not the order they arrive in.
    #[test]
    fn streamed_files_are_what_candle_writes() {
        let names = ["b.weight", "a.weight", "c.bias", "a.bias", "z", "m.weight"];
        let shapes = [
            vec![5, 3],
            vec![7],
            vec![2, 2, 3],
            vec![1],
            vec![0],
            vec![9, 4],
        ];
        for dtype in [DType::BF16, DType::F32] {
            let tensors: Vec<(String, Tensor)> = names
                .iter()
                .zip(&shapes)
                .enumerate()
                .map(|(k, (n, shape))| {
                    let len: usize = shape.iter().product();
                    let v: Vec<f32> = (0..len).map(|i| (k * 100 + i) as f32 * 0.37).collect();
                    let t = Tensor::from_vec(v, shape.as_slice(), &Device::Cpu).unwrap();
                    (n.to_string(), t.to_dtype(dtype).unwrap())
                })
                .collect();
            let dims: Vec<(String, Vec<usize>)> = tensors
                .iter()
                .map(|(n, t)| (n.clone(), t.dims().to_vec()))
                .collect();
            // Three files: `b.weight` (15 elements); the next four (20, in an order
            // not theirs in the file, with an empty tensor); `m.weight` (36) alone.
            let max = 20 * dtype.size_in_bytes() as u64;
            let dir = tempfile::tempdir().unwrap();
            let mut w = WeightsWriter::new(dir.path(), &dims, dtype, max).with_chunk(4);
            for (n, t) in &tensors {
                w.push(n, t).unwrap();
            }
            let plan = &w.plan;
            assert_eq!(plan.files(), 3);
            let want = tempfile::tempdir().unwrap();
            for (i, r) in plan.files.iter().enumerate() {
                let file = plan.file_name(i);
                let map: HashMap<String, Tensor> = tensors[r.clone()].iter().cloned().collect();
                candle_core::safetensors::save(&map, want.path().join(&file)).unwrap();
                let got = std::fs::read(dir.path().join(&file)).unwrap();
                let same = got == std::fs::read(want.path().join(&file)).unwrap();
                assert!(same, "{dtype:?} {file}");
            }
        }
    }
}
