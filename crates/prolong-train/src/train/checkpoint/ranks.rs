//! The run's checkpoint, written and read by all of its ranks: with replicated weights
//! rank 0 alone; with sharded state every rank its shard, rank 0 the HF weights (one
//! unit at a time under `full`) and the rest, all in the one temporary folder rank 0
//! began and puts in place.

use std::path::{Path, PathBuf};

use candle_core::Tensor;

use super::{
    OPT_STATE, OPTIMIZER_DIR, STATE_FILE, TrainerState, io, load_optimizer, meta, read_meta, save,
    whole_files, write_json,
};
use crate::checkpoint::WeightsWriter;
use crate::dist::group::ProcessGroup;
use crate::train::TrainError;
use crate::train::dcp::{self, Kind, StateSource};
use crate::train::run::Setup;
use crate::train::sharded::ShardedState;
use crate::train::weights::Weights;

/// The run's checkpoint at `dir`: rank 0 alone for replicated weights; with sharded
/// state every rank writes its shard file while rank 0 writes the HF weights, the index
/// and the rest, the trainer state last, all into the one temporary folder rank 0
/// began; rank 0 puts it in place once every shard is written. With `full` sharding the
/// HF weights are gathered one unit at a time ([`save_hf_units`]), never whole.
pub(in crate::train) fn save_run(
    dir: &Path,
    weights: &mut Weights,
    state: &TrainerState,
    s: &Setup,
) -> Result<(), TrainError> {
    let shard_bytes = s
        .cfg
        .checkpoint
        .max_shard_bytes()
        .unwrap_or(crate::checkpoint::DEFAULT_MAX_SHARD_BYTES);
    let group = s.group.as_ref();
    let Weights::Sharded {
        model,
        state: shards,
        ..
    } = weights
    else {
        if let (true, Weights::Replicated { model, opt }) = (s.root(), &*weights) {
            save(dir, model, opt, state, shard_bytes)?;
        }
        return Ok(());
    };
    let write = if s.root() {
        let w = prolong_mds::DirWrite::begin(dir)?;
        std::fs::create_dir(w.tmp().join(OPTIMIZER_DIR)).map_err(io(w.tmp()))?;
        Some(w)
    } else {
        None
    };
    let tmp = shared_tmp(dir, write.as_ref(), group)?;
    let odir = tmp.join(OPTIMIZER_DIR);
    dcp::write_shard(&odir, shards)?;
    match model {
        // `grad_op`: every rank holds the whole model anyway.
        Some(m) if s.root() => m.save_sharded(&tmp, shard_bytes)?,
        Some(_) => {}
        None => save_hf_units(&tmp, shards, s, shard_bytes)?,
    }
    if s.root() {
        let decay = shards.params.iter().filter(|(n, shape)| {
            crate::optim::decays_with_norms(n, shape, s.cfg.train.decay_norms)
        });
        let decay = decay.map(|(n, _)| n.clone()).collect();
        write_json(&odir.join(OPT_STATE), &meta(&shards.opt, decay))?;
        write_json(&odir.join(dcp::INDEX), &dcp::index(shards))?;
    }
    group.barrier()?; // every shard is written
    if let Some(w) = write {
        write_json(&tmp.join(STATE_FILE), state)?;
        w.commit()?;
    }
    group.barrier()?; // in place before anyone moves on (or prunes)
    Ok(())
}

/// The HF weights (and `config.json`) of the sharded state `shards` into `dir`, the
/// files [`Llama::save_sharded`] writes, gathered one unit at a time: every rank takes
/// part in each unit's all-gather; rank 0 hands the unit's tensors to the writer, which
/// writes each into its file at once (at the offset the file's header fixes) and keeps
/// none; every rank frees the unit before gathering the next. So a rank holds at most
/// the largest unit of gathered weights (counted in `shards.gathered`).
fn save_hf_units(
    dir: &Path,
    shards: &ShardedState,
    s: &Setup,
    max_shard_bytes: u64,
) -> Result<(), TrainError> {
    let mut writer = s
        .root()
        .then(|| WeightsWriter::new(dir, &shards.params, s.dtype, max_shard_bytes));
    for (u, unit) in shards.layout.units().iter().enumerate() {
        let tensors = shards.gather_unit(u, s.dtype, &s.dev, s.group.as_ref())?;
        if let Some(w) = writer.as_mut() {
            for ((name, _), t) in shards.params[unit.params.clone()].iter().zip(&tensors) {
                w.push(name, t)?;
            }
        }
        drop(tensors);
        shards.release_unit(u, s.dtype);
    }
    if let Some(w) = writer {
        w.finish(&s.llama)?;
    }
    Ok(())
}

/// The temporary folder rank 0 began (`write`, on rank 0 only), on every rank: its name
/// broadcast from rank 0 (length first), beside `dir`. Also the barrier after which the
/// folder exists.
fn shared_tmp(
    dir: &Path,
    write: Option<&prolong_mds::DirWrite>,
    group: &dyn ProcessGroup,
) -> Result<PathBuf, TrainError> {
    let mut name = write
        .and_then(|w| w.tmp().file_name())
        .map(|n| n.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default();
    let mut len = (name.len() as u64).to_le_bytes();
    group.broadcast(&mut len, 0)?;
    let len = u64::from_le_bytes(len);
    // A file name: at most 255 bytes on every file system we write to.
    if len > 4096 {
        return Err(TrainError::Checkpoint {
            path: dir.into(),
            msg: format!("rank 0 sent a temporary folder name of {len} bytes"),
        });
    }
    name.resize(len as usize, 0);
    group.broadcast(&mut name, 0)?;
    let name = String::from_utf8(name).map_err(|_| TrainError::Checkpoint {
        path: dir.into(),
        msg: "rank 0 sent a temporary folder name that is not UTF-8".into(),
    })?;
    Ok(dir.with_file_name(name))
}

/// Loads the optimizer state of the checkpoint in `dir` (replicated or sharded, written
/// by any number of ranks) into `weights`: Adam's step count, the moments and, where the
/// checkpoint keeps them apart from the model's weights, the fp32 masters.
pub(in crate::train) fn load_optimizer_into(
    dir: &Path,
    weights: &mut Weights,
    s: &Setup,
) -> Result<(), TrainError> {
    let odir = dir.join(OPTIMIZER_DIR);
    match weights {
        Weights::Replicated { opt, .. } if !odir.join(dcp::INDEX).is_file() => {
            load_optimizer(dir, opt)
        }
        Weights::Replicated { model, opt } => {
            let meta = read_meta(&odir)?;
            let mut src = StateSource::open(&odir, whole_files())?;
            for p in &mut opt.params {
                let shape = p.master.dims().to_vec();
                let n = p.master.elem_count();
                for kind in Kind::ALL {
                    if let Some(v) = src.read(kind, &p.name, &shape, 0..n)? {
                        let t = Tensor::from_vec(v, shape.as_slice(), p.master.device())?;
                        match kind {
                            Kind::Master => p.master = t,
                            Kind::ExpAvg => p.exp_avg = t,
                            Kind::ExpAvgSq => p.exp_avg_sq = t,
                        }
                    }
                }
            }
            opt.step = meta.step;
            // The compute weights are the masters cast (bit for bit what a replicated
            // run holds after its update).
            for (p, (_, t)) in opt.params.iter().zip(model.params_mut().named_mut()) {
                *t = p.master.to_dtype(t.dtype())?;
            }
            Ok(())
        }
        Weights::Sharded { state, model, .. } => {
            let meta = read_meta(&odir)?;
            let mut src = StateSource::open(&odir, whole_files())?;
            for (piece, p) in state.pieces.iter().zip(&mut state.opt.params) {
                let shape = &state.params[piece.param].1;
                for kind in Kind::ALL {
                    if let Some(v) = src.read(kind, &p.name, shape, piece.in_param.clone())? {
                        let t = Tensor::from_vec(v, piece.in_param.len(), p.master.device())?;
                        match kind {
                            Kind::Master => p.master = t,
                            Kind::ExpAvg => p.exp_avg = t,
                            Kind::ExpAvgSq => p.exp_avg_sq = t,
                        }
                    }
                }
            }
            state.opt.step = meta.step;
            if model.take().is_some() {
                state.release_model(s.dtype);
                *model = Some(state.gather_model(&s.llama, s.dtype, &s.dev, s.group.as_ref())?);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::LoaderState;
    use crate::dist::group::Solo;
    use crate::train::checkpoint::*;
    use crate::train::init::random_llama;
    use crate::train::run::{TINY_FULL_STAGE, solo_setup};
    use crate::train::weights::weights_for;

    /// Every file of `want` (a folder of HF weights) is in `got`, byte for byte, and
    /// `got` has no other weight file.
    fn assert_same_hf_files(got: &Path, want: &Path) {
        let names = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("model") || n == crate::checkpoint::CONFIG_FILE)
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(got), names(want));
        for n in names(want) {
            let same =
                std::fs::read(got.join(&n)).unwrap() == std::fs::read(want.join(&n)).unwrap();
            assert!(same, "{n} differs");
        }
    }

    /// `[parallel] shard = "full"` (one rank): the checkpoint's HF weights, gathered and
    /// written one unit at a time, are the files the whole-model path
    /// ([`Llama::save_sharded`] of the gathered model) writes, byte for byte: in bf16,
    /// shards of at most 5000 bytes (several files, a file boundary inside a decoder
    /// layer), the index and `config.json`. And the rank never holds the whole model:
    /// the most gathered bytes alive at once during the checkpoint (the state's
    /// [`GatherMeter`](super::super::sharded::GatherMeter), which counts each unit from
    /// its gather to its release) are the largest unit, nothing more (the writer keeps
    /// no tensor of a file not yet complete), under half the model (gathering the model
    /// whole for the checkpoint counts the whole model).
    #[test]
    fn full_checkpoint_writes_the_whole_model_files_one_unit_at_a_time() {
        let max = 5000;
        let text = format!("{TINY_FULL_STAGE}max_shard_size = \"{max}\"\n");
        let cfg = StageConfig::parse(&text, Path::new("test.toml")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let s = solo_setup(&cfg, DType::BF16, tmp.path());
        let model = random_llama(&s.llama, 5, 0.02, DType::F32, &s.dev).unwrap();
        let mut weights = weights_for(&s, model).unwrap();
        let loader = LoaderState {
            seed: 3,
            total_sequences: 2,
            position: 0,
            allocation: vec![2],
            stream_samples: vec![4],
        };
        let state = TrainerState::fresh(&cfg, loader, 1);
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        save_run(&a, &mut weights, &state, &s).unwrap();
        let Weights::Sharded { state: shards, .. } = &weights else {
            panic!("full sharding keeps sharded weights")
        };
        let peak = shards.gathered.peak();
        let whole = shards
            .gather_model(&s.llama, s.dtype, &s.dev, &Solo)
            .unwrap();
        shards.release_model(s.dtype);
        whole.save_sharded(&b, max).unwrap();
        assert_same_hf_files(&a, &b);

        // Several files, and one decoder layer's tensors in two of them.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join(crate::checkpoint::INDEX_FILE)).unwrap())
                .unwrap();
        let map = index["weight_map"].as_object().unwrap();
        let files = |prefix: &str| {
            let f = map.iter().filter(|(n, _)| n.starts_with(prefix));
            f.map(|(_, f)| f.as_str().unwrap())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(
            files("").len() >= 3 && files("model.layers.1.").len() >= 2,
            "{map:?}"
        );

        let units = shards.layout.units().len();
        let unit_bytes: Vec<u64> = (0..units).map(|u| shards.unit_bytes(u, s.dtype)).collect();
        let largest = *unit_bytes.iter().max().unwrap();
        let model_bytes: u64 = unit_bytes.iter().sum();
        eprintln!("units {unit_bytes:?}, model {model_bytes} B, checkpoint peak {peak} B");
        assert!(
            peak == largest && 2 * peak < model_bytes,
            "peak {peak} B held; largest unit {largest} B, model {model_bytes} B"
        );
        assert_eq!(shards.gathered.alive(), 0);
    }
}
