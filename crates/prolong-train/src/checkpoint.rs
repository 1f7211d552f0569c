//! HF-layout checkpoints: `config.json` + `model.safetensors`, or sharded
//! `model-0000N-of-0000M.safetensors` with `model.safetensors.index.json`.
//!
//! Saving follows transformers' `save_pretrained`: tensors in the model's order go into
//! a shard until the next one would take it past the maximum shard size (a tensor larger
//! than the maximum gets a shard of its own); one shard is written as
//! `model.safetensors` without an index, several as numbered shards plus an index whose
//! `metadata.total_size` is the bytes of all tensors and whose `weight_map` names each
//! tensor's shard.

use std::collections::{BTreeSet, HashMap};
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
    /// at most `max_shard_bytes` (see the module docs). Every file is written whole
    /// ([`prolong_mds::write_atomic_path`]: a tagged temporary name, synced, renamed,
    /// the folder synced); the index follows its shards, files of an earlier save
    /// that the new one does not use are removed after it, and the config goes last, so
    /// the directory always holds one complete set of weights.
    pub fn save_sharded(&self, dir: impl AsRef<Path>, max_shard_bytes: u64) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            err: source,
        })?;
        let named = self.params().named();
        let shards = shard(&named, max_shard_bytes);
        let n = shards.len();
        let mut files = Vec::with_capacity(n);
        for (i, shard) in shards.iter().enumerate() {
            let file = if n == 1 {
                WEIGHTS_FILE.to_string()
            } else {
                format!("model-{:05}-of-{n:05}.safetensors", i + 1)
            };
            let map: HashMap<String, Tensor> = shard
                .iter()
                .map(|&k| (named[k].0.clone(), named[k].1.clone()))
                .collect();
            prolong_mds::write_atomic_path(&dir.join(&file), |tmp| {
                candle_core::safetensors::save(&map, tmp).map_err(Error::from)
            })?;
            files.push(file);
        }
        if n > 1 {
            let mut weight_map = serde_json::Map::new();
            for (shard, file) in shards.iter().zip(&files) {
                for &k in shard {
                    weight_map.insert(named[k].0.clone(), file.clone().into());
                }
            }
            let index = serde_json::json!({
                "metadata": { "total_size": named.iter().map(|(_, t)| bytes(t)).sum::<u64>() },
                "weight_map": weight_map,
            });
            let index_path = dir.join(INDEX_FILE);
            let text = serde_json::to_string_pretty(&index).map_err(|source| Error::Json {
                path: index_path.clone(),
                err: source,
            })?;
            write_atomic(&index_path, text.as_bytes())?;
        }
        remove_stale_weights(dir, &files)?;
        self.config().save(dir.join(CONFIG_FILE))
    }
}

/// Bytes of a tensor's data.
fn bytes(t: &Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}

/// Groups tensor positions into shards of at most `max_bytes` (transformers' rule: in
/// order, a new shard when the next tensor would not fit; an oversized tensor alone).
fn shard(named: &[(String, &Tensor)], max_bytes: u64) -> Vec<Vec<usize>> {
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0u64;
    for (k, (_, t)) in named.iter().enumerate() {
        let b = bytes(t);
        let current = shards.last_mut().expect("at least one shard");
        if !current.is_empty() && size + b > max_bytes {
            shards.push(vec![k]);
            size = b;
        } else {
            current.push(k);
            size += b;
        }
    }
    shards
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
