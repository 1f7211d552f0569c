//! HF-layout checkpoints and config.json: round trips, sharding, and errors naming tensors.

use std::collections::HashMap;

use crate::common::{Rng, golden_dir, norm_rel_err, random_model, sorted_names, tiny_config};
use candle_core::{DType, Device, Tensor};
use prolong_train::{Error, Llama, LlamaConfig, PackedSequence};

fn copy_config(to: &std::path::Path) {
    std::fs::copy(
        golden_dir().join("model/config.json"),
        to.join("config.json"),
    )
    .unwrap();
}

fn golden_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(golden_dir().join("model/model.safetensors"), &Device::Cpu)
        .unwrap()
}

#[test]
fn save_then_load_round_trips_weights_and_config() {
    let model = Llama::load(golden_dir().join("model"), DType::F32, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let back = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(back.config(), model.config());
    for ((n, a), (_, b)) in model.params().named().iter().zip(back.params().named()) {
        assert_eq!(norm_rel_err(b, a), 0.0, "{n}");
    }
    // unknown HF keys survive
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["model_type"], "llama");
    assert_eq!(cfg["transformers_version"], "4.57.6");
    let names = sorted_names(dir.path());
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn tied_model_saves_without_lm_head() {
    let cfg = tiny_config(true);
    let model = random_model(&cfg, &mut Rng::new(3), DType::F32);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let saved =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(!saved.contains_key("lm_head.weight"));
    assert!(saved.contains_key("model.embed_tokens.weight"));
    let back = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    assert!(back.params().lm_head.is_none());
}

#[test]
fn sharded_checkpoint_loads_like_single_file() {
    let tensors = golden_tensors();
    let dir = tempfile::tempdir().unwrap();
    copy_config(dir.path());
    let mut names: Vec<_> = tensors.keys().cloned().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let shard: HashMap<_, _> = part
            .iter()
            .map(|n| (n.clone(), tensors[n].clone()))
            .collect();
        candle_core::safetensors::save(&shard, dir.path().join(file)).unwrap();
        for n in part {
            weight_map.insert(n.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let sharded = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    let single = Llama::load(golden_dir().join("model"), DType::F32, &Device::Cpu).unwrap();
    let seq = PackedSequence::single((0..20).collect());
    let (x, y) = (sharded.logits(&seq).unwrap(), single.logits(&seq).unwrap());
    assert_eq!(norm_rel_err(&x, &y), 0.0);
}

/// Every safetensors file in `dir` is, byte for byte, what candle's
/// `safetensors::save` writes for its tensors (the writer streams each tensor to the
/// offset its own header gives it; this is the format's reference serialiser).
fn assert_candle_writes_the_same_files(dir: &std::path::Path) {
    let out = tempfile::tempdir().unwrap();
    let files: Vec<String> = sorted_names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let tensors = candle_core::safetensors::load(dir.join(&file), &Device::Cpu).unwrap();
        candle_core::safetensors::save(&tensors, out.path().join(&file)).unwrap();
        let same = std::fs::read(dir.join(&file)).unwrap()
            == std::fs::read(out.path().join(&file)).unwrap();
        assert!(same, "{file} is not what candle writes");
    }
}

#[test]
fn sharded_save_writes_a_transformers_index_and_round_trips() {
    let model = Llama::load(golden_dir().join("model"), DType::F32, &Device::Cpu).unwrap();
    let named = model.params().named();
    let sizes: Vec<u64> = named
        .iter()
        .map(|(_, t)| t.elem_count() as u64 * 4)
        .collect();
    let total: u64 = sizes.iter().sum();
    let largest = *sizes.iter().max().unwrap();
    // A limit a bit above the largest tensor: several shards, each within the limit
    // unless it holds one tensor alone.
    let limit = largest + largest / 2;
    let dir = tempfile::tempdir().unwrap();
    model.save_sharded(dir.path(), limit).unwrap();

    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(total));
    let weight_map = index["weight_map"].as_object().unwrap();
    assert_eq!(weight_map.len(), named.len());
    let files: std::collections::BTreeSet<&str> =
        weight_map.values().map(|f| f.as_str().unwrap()).collect();
    let n = files.len();
    assert!(n >= 3, "{n} shards");
    let expected: std::collections::BTreeSet<String> = (1..=n)
        .map(|i| format!("model-{i:05}-of-{n:05}.safetensors"))
        .collect();
    assert_eq!(
        files
            .iter()
            .map(|f| f.to_string())
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    // every shard holds exactly the tensors the index gives it, within the limit
    for file in &files {
        let shard = candle_core::safetensors::load(dir.path().join(file), &Device::Cpu).unwrap();
        let mut in_index: Vec<&String> = weight_map
            .iter()
            .filter(|(_, f)| f.as_str() == Some(*file))
            .map(|(name, _)| name)
            .collect();
        in_index.sort();
        let mut held: Vec<&String> = shard.keys().collect();
        held.sort();
        assert_eq!(held, in_index, "{file}");
        let bytes: u64 = shard.values().map(|t| t.elem_count() as u64 * 4).sum();
        assert!(
            bytes <= limit || shard.len() == 1,
            "{file}: {bytes} > {limit}"
        );
    }
    assert_candle_writes_the_same_files(dir.path());
    // in the model's order: shard numbers never decrease along the parameters
    let order: Vec<&str> = named
        .iter()
        .map(|(name, _)| weight_map[name].as_str().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");

    let back = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    for ((name, a), (_, b)) in named.iter().zip(back.params().named()) {
        assert_eq!(norm_rel_err(b, a), 0.0, "{name}");
    }

    // Saving again into the same directory as one file removes the shards and the
    // index; and back to shards removes the single file.
    model.save(dir.path()).unwrap();
    assert_eq!(
        sorted_names(dir.path()),
        ["config.json", "model.safetensors"]
    );
    model.save_sharded(dir.path(), limit).unwrap();
    let names = sorted_names(dir.path());
    assert!(
        !names.contains(&"model.safetensors".to_string()),
        "{names:?}"
    );
    assert_eq!(names.len(), n + 2, "{names:?}"); // shards, index, config
    // In bf16 too (the trainer's checkpoints), one file and several.
    let bf16 = Llama::load(golden_dir().join("model"), DType::BF16, &Device::Cpu).unwrap();
    for max in [u64::MAX, limit / 2] {
        let dir = tempfile::tempdir().unwrap();
        bf16.save_sharded(dir.path(), max).unwrap();
        assert_candle_writes_the_same_files(dir.path());
    }
    let again = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    let seq = PackedSequence::single((0..20).collect());
    assert_eq!(
        norm_rel_err(&again.logits(&seq).unwrap(), &model.logits(&seq).unwrap()),
        0.0
    );
}

/// The error of loading `dir` with `index` as its model.safetensors.index.json.
fn load_with_index(dir: &std::path::Path, index: serde_json::Value) -> Error {
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    Llama::load(dir, DType::F32, &Device::Cpu).unwrap_err()
}

#[test]
fn shard_index_naming_a_tensor_its_shard_lacks_is_an_error() {
    let tensors = golden_tensors();
    let dir = tempfile::tempdir().unwrap();
    copy_config(dir.path());
    let file = "model-00001-of-00001.safetensors";
    candle_core::safetensors::save(&tensors, dir.path().join(file)).unwrap();
    let mut weight_map: serde_json::Map<_, _> =
        tensors.keys().map(|n| (n.clone(), file.into())).collect();
    weight_map.insert("model.layers.7.mlp.up_proj.weight".into(), file.into());
    let err = load_with_index(dir.path(), serde_json::json!({ "weight_map": weight_map }));
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("model.layers.7.mlp.up_proj.weight"),
        "{err}"
    );

    // an index pointing at a shard that does not exist
    let index = serde_json::json!({ "weight_map": { "model.norm.weight": "nope.safetensors" } });
    let err = load_with_index(dir.path(), index);
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let mut tensors = golden_tensors();
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    let dir = tempfile::tempdir().unwrap();
    copy_config(dir.path());
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name } if name == "model.layers.1.mlp.up_proj.weight")
    );
    assert!(
        err.to_string()
            .contains("model.layers.1.mlp.up_proj.weight")
    );
}

#[test]
fn misshaped_tensor_is_named() {
    let mut tensors = golden_tensors();
    let bad = Tensor::zeros((64, 32), DType::F32, &Device::Cpu).unwrap();
    tensors.insert("model.layers.0.self_attn.k_proj.weight".into(), bad);
    let dir = tempfile::tempdir().unwrap();
    copy_config(dir.path());
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    match err {
        Error::TensorShape {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, "model.layers.0.self_attn.k_proj.weight");
            assert_eq!(expected, vec![32, 64]);
            assert_eq!(actual, vec![64, 32]);
        }
        e => panic!("unexpected error {e}"),
    }
}

#[test]
fn missing_weights_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_config(dir.path());
    let err = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn config_defaults_and_validation() {
    let base = r#""vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
                  "num_hidden_layers": 1, "num_attention_heads": 2"#;
    let cfg = LlamaConfig::from_json(&format!("{{{base}, \"some_hf_key\": [1, 2]}}")).unwrap();
    assert_eq!(cfg.n_kv_heads(), 2);
    assert_eq!(cfg.head_dim(), 4);
    assert_eq!(cfg.rope_theta, 10_000.0);
    assert!(!cfg.tie_word_embeddings);
    assert!(cfg.extra.contains_key("some_hf_key"));

    let golden = LlamaConfig::load(golden_dir().join("model/config.json")).unwrap();
    assert_eq!((golden.n_kv_heads(), golden.head_dim()), (2, 16));
    assert_eq!(golden.rope_theta, 8e6);
    assert_eq!(golden.rms_norm_eps, 1e-5);

    for bad in [
        r#""vocab_size": 10, "hidden_size": 10, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 3"#,
        &format!("{base}, \"num_key_value_heads\": 3"),
        &format!("{base}, \"head_dim\": 3"),
        &format!("{base}, \"hidden_act\": \"gelu\""),
        &format!("{base}, \"rms_norm_eps\": 0"),
        &format!("{base}, \"attention_bias\": true"),
        &format!("{base}, \"rope_scaling\": {{\"rope_type\": \"llama3\"}}"),
        r#""vocab_size": 0, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2"#,
    ] {
        let err = LlamaConfig::from_json(&format!("{{{bad}}}")).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err}");
    }
    assert!(matches!(
        LlamaConfig::from_json("{"),
        Err(Error::Json { .. })
    ));
    assert!(matches!(
        LlamaConfig::from_json(r#"{"hidden_size": 8}"#),
        Err(Error::Json { .. })
    ));
}

#[test]
fn out_of_range_token_is_an_error() {
    let model = Llama::load(golden_dir().join("model"), DType::F32, &Device::Cpu).unwrap();
    let seq = PackedSequence::single(vec![1, 2, 512, 3]);
    let err = model.logits(&seq).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TokenOutOfRange {
                pos: 2,
                id: 512,
                vocab: 512
            }
        ),
        "{err}"
    );
}

/// Fails when a message repeats its cause: each error of a `source()` chain must say
/// something the one before it did not, so `{:#}` (how the binaries print) says each
/// thing once.
fn assert_each_cause_said_once(e: &(dyn std::error::Error + 'static)) {
    let mut current = e;
    while let Some(source) = current.source() {
        let (outer, inner) = (current.to_string(), source.to_string());
        assert!(
            !outer.contains(&inner),
            "`{outer}` repeats its source `{inner}`"
        );
        current = source;
    }
}

#[test]
fn error_messages_do_not_repeat_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Llama::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let bad_json = LlamaConfig::load(dir.path().join("config.json")).unwrap_err();
    assert!(matches!(bad_json, Error::Json { .. }), "{bad_json}");
    for e in [missing, bad_json] {
        let text = e.to_string();
        assert_each_cause_said_once(&e);
        let wrapped = prolong_train::train::TrainError::from(e);
        assert!(wrapped.to_string().contains(&text), "{wrapped}");
        assert_each_cause_said_once(&wrapped);
    }
}
