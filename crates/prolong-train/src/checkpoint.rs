//! HF-layout checkpoints: `config.json` + `model.safetensors`, or sharded
//! `model-0000N-of-0000M.safetensors` with `model.safetensors.index.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::LlamaConfig;
use crate::error::{Error, Result};
use crate::model::{Llama, LlamaParams};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

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

    /// Writes `dir/config.json` and `dir/model.safetensors` (HF names, the model's dtype).
    /// Files are written under temporary names and renamed; the config goes last.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.into(),
            source,
        })?;
        let map: HashMap<String, Tensor> = self
            .params()
            .named()
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect();
        let path = dir.join(WEIGHTS_FILE);
        let tmp = tmp_name(&path);
        candle_core::safetensors::save(&map, &tmp)?;
        rename(&tmp, &path)?;
        self.config().save(dir.join(CONFIG_FILE))
    }
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
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: index.clone(),
        source,
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
    if !path.exists() {
        return Err(Error::Io {
            path: path.into(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::Checkpoint {
        path: path.into(),
        msg: e.to_string(),
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    std::fs::write(&tmp, bytes).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    rename(&tmp, path)
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    s.into()
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|source| Error::Io {
        path: to.into(),
        source,
    })
}
