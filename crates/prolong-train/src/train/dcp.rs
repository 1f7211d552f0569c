//! The sharded optimizer files of a checkpoint, in a layout that does not depend on the
//! world size (as PyTorch's distributed checkpoint, DCP):
//!
//! ```text
//! DIR/optimizer/shard-0000R-of-0000N.safetensors   rank R's pieces: for each parameter
//!                                                  piece it owns, three 1-D f32 tensors
//!                                                  `master.NAME`, `exp_avg.NAME`,
//!                                                  `exp_avg_sq.NAME`
//! DIR/optimizer/index.json                         per tensor: its global shape and
//!                                                  which file holds which flat range
//! ```
//!
//! `index.json`: `{"format": 1, "world": N, "tensors": [{"name": "model.norm.weight",
//! "shape": [32], "pieces": [{"file": "shard-00001-of-00002.safetensors", "start": 0,
//! "end": 32}]}, ...]}`; `start..end` are elements of the tensor flattened row-major, and
//! a tensor's pieces cover it exactly, in order. A rank of a resumed run with any world
//! size reads, for each piece it owns, the overlapping ranges of the files that hold
//! them ([`StateSource`]); the replicated layout of [`super::checkpoint`] (whole tensors
//! by HF name) reads through the same interface.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::sharded::ShardedState;

pub const INDEX: &str = "index.json";

/// The optimizer state kinds a checkpoint holds per parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Master,
    ExpAvg,
    ExpAvgSq,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Master, Kind::ExpAvg, Kind::ExpAvgSq];

    fn prefix(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::ExpAvg => "exp_avg",
            Kind::ExpAvgSq => "exp_avg_sq",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    /// Ranks that wrote the checkpoint.
    pub world: usize,
    pub tensors: Vec<TensorEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub pieces: Vec<PieceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PieceEntry {
    pub file: String,
    pub start: usize,
    pub end: usize,
}

/// The file rank `rank` of `world` writes.
pub fn shard_file(rank: usize, world: usize) -> String {
    format!("shard-{:05}-of-{world:05}.safetensors", rank + 1)
}

fn failed(path: &Path, msg: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.into(),
        msg: msg.to_string(),
    }
}

/// The index of `state`'s layout: every rank's pieces (the same on every rank, so rank 0
/// writes it without asking the others).
pub fn index(state: &ShardedState) -> Index {
    let world = state.world;
    let mut tensors: Vec<TensorEntry> = state
        .params
        .iter()
        .map(|(name, shape)| TensorEntry {
            name: name.clone(),
            shape: shape.clone(),
            pieces: Vec::new(),
        })
        .collect();
    for r in 0..world {
        for p in state.layout.pieces(r) {
            tensors[p.param].pieces.push(PieceEntry {
                file: shard_file(r, world),
                start: p.in_param.start,
                end: p.in_param.end,
            });
        }
    }
    Index {
        format: 1,
        world,
        tensors,
    }
}

/// Writes this rank's shard file into `odir` (through the atomic writer).
pub fn write_shard(odir: &Path, state: &ShardedState) -> Result<(), TrainError> {
    let world = state.world;
    let mut map: Vec<(String, &Tensor)> = Vec::new();
    for st in &state.opt.params {
        map.push((format!("master.{}", st.name), &st.master));
        map.push((format!("exp_avg.{}", st.name), &st.exp_avg));
        map.push((format!("exp_avg_sq.{}", st.name), &st.exp_avg_sq));
    }
    let path = odir.join(shard_file(state.rank, world));
    write_tensors(&path, map)
}

/// `tensors` as one safetensors file at `path`, through prolong_mds's atomic writer.
pub fn write_tensors<'t>(
    path: &Path,
    tensors: impl IntoIterator<Item = (String, &'t Tensor)>,
) -> Result<(), TrainError> {
    let bytes = safetensors::serialize(tensors, None).map_err(|e| failed(path, e))?;
    prolong_mds::write_atomic_parts(path, &[&bytes]).map_err(|e| failed(path, e))
}

/// An index that can be read as written: each tensor's pieces cover its elements in
/// order without gap or overlap, and name plain shard files of the folder (never a path
/// elsewhere).
fn check(index: &Index) -> Result<(), String> {
    if index.format != 1 {
        return Err(format!("format {} (this build reads 1)", index.format));
    }
    for t in &index.tensors {
        let numel = t
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("{}: shape {:?} overflows", t.name, t.shape))?;
        let mut at = 0;
        for p in &t.pieces {
            if p.start != at || p.end < p.start || p.end > numel {
                return Err(format!(
                    "{}: piece {}..{} in {} does not continue at element {at} of {numel}",
                    t.name, p.start, p.end, p.file
                ));
            }
            let plain = p.file.starts_with("shard-")
                && p.file.ends_with(".safetensors")
                && !p.file.contains(['/', '\\'])
                && !p.file.contains("..");
            if !plain {
                return Err(format!("{}: {:?} is not a shard file name", t.name, p.file));
            }
            at = p.end;
        }
        if at != numel {
            return Err(format!(
                "{}: the pieces cover {at} of its {numel} elements",
                t.name
            ));
        }
    }
    Ok(())
}

/// Where a resumed run reads optimizer state from: a sharded checkpoint (this module's
/// layout) or a replicated one (whole tensors by HF name, `super::checkpoint`).
pub enum StateSource {
    Sharded {
        dir: PathBuf,
        tensors: HashMap<String, TensorEntry>,
        files: HashMap<String, HashMap<String, Tensor>>,
    },
    Whole {
        files: HashMap<&'static str, HashMap<String, Tensor>>,
    },
}

impl StateSource {
    /// The optimizer folder `odir` of a checkpoint: sharded when it has an index.
    pub fn open(odir: &Path, whole_files: [(Kind, &'static str); 3]) -> Result<Self, TrainError> {
        let index_path = odir.join(INDEX);
        if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path).map_err(|e| failed(&index_path, e))?;
            let index: Index = serde_json::from_str(&text).map_err(|e| failed(&index_path, e))?;
            check(&index).map_err(|msg| failed(&index_path, msg))?;
            return Ok(StateSource::Sharded {
                dir: odir.into(),
                tensors: index
                    .tensors
                    .into_iter()
                    .map(|t| (t.name.clone(), t))
                    .collect(),
                files: HashMap::new(),
            });
        }
        let mut files = HashMap::new();
        for (kind, file) in whole_files {
            let path = odir.join(file);
            if path.is_file() {
                let map = candle_core::safetensors::load(&path, &Device::Cpu)
                    .map_err(|e| failed(&path, e))?;
                files.insert(kind.prefix(), map);
            }
        }
        Ok(StateSource::Whole { files })
    }

    /// Elements `range` of the flattened `kind` of parameter `name` (of shape `shape`),
    /// or `None` when the checkpoint does not hold that kind (a replicated f32
    /// checkpoint keeps no separate master weights: they are the model's).
    pub fn read(
        &mut self,
        kind: Kind,
        name: &str,
        shape: &[usize],
        range: Range<usize>,
    ) -> Result<Option<Vec<f32>>, TrainError> {
        match self {
            StateSource::Whole { files } => {
                let Some(map) = files.get(kind.prefix()) else {
                    return Ok(None);
                };
                let t = map
                    .get(name)
                    .ok_or_else(|| failed(Path::new(kind.prefix()), format!("no tensor {name}")))?;
                if t.dims() != shape {
                    return Err(failed(
                        Path::new(kind.prefix()),
                        format!("{name} has shape {:?}, the model {shape:?}", t.dims()),
                    ));
                }
                let v = t.flatten_all()?.to_dtype(candle_core::DType::F32)?;
                Ok(Some(v.narrow(0, range.start, range.len())?.to_vec1()?))
            }
            StateSource::Sharded {
                dir,
                tensors,
                files,
            } => {
                let index_path = dir.join(INDEX);
                let entry = tensors
                    .get(name)
                    .ok_or_else(|| failed(&index_path, format!("no tensor {name}")))?;
                if entry.shape != shape {
                    return Err(failed(
                        &index_path,
                        format!("{name} has shape {:?}, the model {shape:?}", entry.shape),
                    ));
                }
                let mut out = vec![0f32; range.len()];
                let mut covered = 0;
                for p in &entry.pieces {
                    let (s, e) = (p.start.max(range.start), p.end.min(range.end));
                    if s >= e {
                        continue;
                    }
                    if !files.contains_key(&p.file) {
                        let path = dir.join(&p.file);
                        let map = candle_core::safetensors::load(&path, &Device::Cpu)
                            .map_err(|e| failed(&path, e))?;
                        files.insert(p.file.clone(), map);
                    }
                    let key = format!("{}.{name}", kind.prefix());
                    let path = dir.join(&p.file);
                    let t = files[&p.file]
                        .get(&key)
                        .ok_or_else(|| failed(&path, format!("no tensor {key}")))?;
                    if t.dims() != [p.end - p.start] {
                        return Err(failed(
                            &path,
                            format!(
                                "{key} has shape {:?}, the index says [{}]",
                                t.dims(),
                                p.end - p.start
                            ),
                        ));
                    }
                    let v: Vec<f32> = t.narrow(0, s - p.start, e - s)?.to_vec1()?;
                    out[s - range.start..e - range.start].copy_from_slice(&v);
                    covered += e - s;
                }
                if covered != range.len() {
                    return Err(failed(
                        &index_path,
                        format!(
                            "the pieces of {name} cover {covered} of its elements {}..{}",
                            range.start, range.end
                        ),
                    ));
                }
                Ok(Some(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_index(json: &str) -> Result<StateSource, TrainError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX), json).unwrap();
        StateSource::open(
            dir.path(),
            [
                (Kind::Master, "m"),
                (Kind::ExpAvg, "a"),
                (Kind::ExpAvgSq, "v"),
            ],
        )
    }

    /// A sharded index that does not describe its tensors exactly is one error naming the
    /// index and the tensor, before any shard file is opened.
    #[test]
    fn bad_indexes_are_refused() {
        let piece = |file: &str, start: usize, end: usize| {
            format!(r#"{{"file": "{file}", "start": {start}, "end": {end}}}"#)
        };
        let index = |pieces: &[String]| {
            format!(
                r#"{{"format": 1, "world": 2, "tensors": [{{"name": "w", "shape": [2, 3], "pieces": [{}]}}]}}"#,
                pieces.join(", ")
            )
        };
        let f1 = "shard-00001-of-00002.safetensors";
        let f2 = "shard-00002-of-00002.safetensors";
        assert!(open_index(&index(&[piece(f1, 0, 4), piece(f2, 4, 6)])).is_ok());
        for (pieces, says) in [
            (vec![piece(f1, 0, 4)], "cover 4 of its 6"),
            (
                vec![piece(f1, 0, 4), piece(f2, 5, 6)],
                "does not continue at element 4",
            ),
            (
                vec![piece(f1, 0, 4), piece(f2, 3, 6)],
                "does not continue at element 4",
            ),
            (vec![piece(f1, 4, 2)], "does not continue at element 0"),
            (vec![piece(f1, 0, 7)], "does not continue"),
            (
                vec![piece("../../etc/x.safetensors", 0, 6)],
                "not a shard file name",
            ),
        ] {
            let e = match open_index(&index(&pieces)) {
                Ok(_) => panic!("accepted {pieces:?}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(INDEX) && e.contains(says), "{e}");
        }
        let e = open_index(r#"{"format": 2, "world": 1, "tensors": []}"#);
        assert!(e.is_err_and(|e| e.to_string().contains("format 2")));
    }
}
