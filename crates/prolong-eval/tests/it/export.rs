//! `prolong-eval export`: the HF folder loads back with identical tensors, its JSON files
//! carry the right ids, bad inputs are refused; and, when python3 can import torch and
//! transformers, `AutoModelForCausalLM` + `AutoTokenizer` load it and continue a prompt
//! greedily exactly as `Llama::generate_greedy` does (skipped with one line otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recall_common::{fixture, sorted_names};
use candle_core::{DType, Device};
use prolong_eval::export::{ExportError, ExportSpec, export};
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig};
use serde_json::{Value, json};

const WORDS: [&str; 40] = [
    "the", "cat", "sat", "on", "mat", "dog", "ran", "to", "a", "big", "red", "house", "and",
    "then", "it", "was", "small", "blue", "car", "in", "park", "tree", "green", "bird", "sang",
    "song", "over", "hill", "under", "bridge", "river", "fish", "swam", "fast", "slow", "old",
    "man", "walked", "home", "night",
];
/// Ids of the special tokens in the test tokenizer (after `[UNK]` and the words).
const BOS: u32 = 41;
const END_OF_TEXT: u32 = 42;
const EOT: u32 = 43;

/// A word-level tokenizer.json with Llama-3's special tokens as added tokens (46 ids).
fn tokenizer_json() -> Value {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), json!(0));
    for (i, w) in WORDS.iter().enumerate() {
        vocab.insert((*w).into(), json!(i + 1));
    }
    let special = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
    ];
    let added: Vec<Value> = special
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": BOS as usize + i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    model: Llama,
    ckpt: PathBuf,
    tokenizer: PathBuf,
    /// Where [`spec`] exports to, `root/hf` (not made here).
    out: PathBuf,
}

fn setup(vocab: usize) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cfg = LlamaConfig::from_json(
        &json!({"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 48,
                "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "model_type": "llama",
                "max_position_embeddings": 4096})
        .to_string(),
    )
    .unwrap();
    let model = random_llama(&cfg, 3, 0.5, DType::F32, &Device::Cpu).unwrap();
    let ckpt = root.join("ckpt");
    model.save(&ckpt).unwrap();
    let tokenizer = root.join("tokenizer.json");
    std::fs::write(&tokenizer, tokenizer_json().to_string()).unwrap();
    Setup {
        _tmp: tmp,
        out: root.join("hf"),
        root,
        model,
        ckpt,
        tokenizer,
    }
}

/// The export of `s`'s checkpoint and tokenizer to `s.out`, with the default tokenizer
/// config and dtype.
fn spec(s: &Setup) -> ExportSpec<'_> {
    ExportSpec {
        model: &s.ckpt,
        tokenizer: &s.tokenizer,
        tokenizer_config: None,
        dtype: None,
        out: &s.out,
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_same_tensors(a: &Llama, b: &Llama, dtype: DType) {
    let (na, nb) = (a.params().named(), b.params().named());
    assert_eq!(na.len(), nb.len());
    for ((name, x), (name_b, y)) in na.iter().zip(&nb) {
        assert_eq!(name, name_b);
        assert_eq!(y.dtype(), dtype, "{name}");
        let f32s = |t: &candle_core::Tensor| -> Vec<f32> {
            let t = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
            t.to_vec1().unwrap()
        };
        assert_eq!(f32s(&x.to_dtype(dtype).unwrap()), f32s(y), "{name}");
    }
}

#[test]
fn export_round_trips_with_llama3_ids() {
    let s = setup(48);
    let summary = export(&spec(&s)).unwrap();
    assert_eq!(
        (summary.bos_token_id, summary.eos_token_id),
        (BOS, EOT),
        "Llama-3 default: bos <|begin_of_text|>, eos <|eot_id|>"
    );
    assert_eq!(summary.stop_token_ids, [END_OF_TEXT, EOT]);
    assert_eq!(summary.tokenizer_vocab_size, 46);

    let back = Llama::load(&s.out, DType::F32, &Device::Cpu).unwrap();
    assert_same_tensors(&s.model, &back, DType::F32);

    let config = read_json(&s.out.join("config.json"));
    assert_eq!(config["architectures"], json!(["LlamaForCausalLM"]));
    assert_eq!(config["model_type"], "llama");
    assert_eq!(config["bos_token_id"], BOS);
    assert_eq!(config["eos_token_id"], EOT);
    assert_eq!(config["torch_dtype"], "float32");
    assert_eq!(
        config["max_position_embeddings"], 4096,
        "other keys are kept"
    );
    let generation = read_json(&s.out.join("generation_config.json"));
    assert_eq!(
        generation,
        json!({"bos_token_id": BOS, "eos_token_id": [END_OF_TEXT, EOT], "do_sample": false})
    );
    let tok_config = read_json(&s.out.join("tokenizer_config.json"));
    assert_eq!(tok_config["bos_token"], "<|begin_of_text|>");
    assert_eq!(tok_config["eos_token"], "<|eot_id|>");
    assert!(
        tok_config["chat_template"]
            .as_str()
            .unwrap()
            .contains("<|start_header_id|>")
    );
    assert_eq!(
        std::fs::read(s.out.join("tokenizer.json")).unwrap(),
        std::fs::read(&s.tokenizer).unwrap()
    );
    // nothing but the export beside the inputs: the temporary folder was renamed
    assert_eq!(sorted_names(&s.root), ["ckpt", "hf", "tokenizer.json"]);
}

#[test]
fn given_tokenizer_config_and_dtype_are_used() {
    let s = setup(46);
    let cfg_path = s.root.join("tokenizer_config.json");
    let given = json!({"bos_token": {"content": "<|begin_of_text|>"},
                       "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast"});
    std::fs::write(&cfg_path, given.to_string()).unwrap();
    let summary = export(&ExportSpec {
        tokenizer_config: Some(&cfg_path),
        dtype: Some(DType::BF16),
        ..spec(&s)
    })
    .unwrap();
    assert_eq!(summary.eos_token_id, END_OF_TEXT);
    assert_eq!(summary.stop_token_ids, [END_OF_TEXT]);
    assert_eq!(read_json(&s.out.join("tokenizer_config.json")), given);
    assert_eq!(
        read_json(&s.out.join("generation_config.json"))["eos_token_id"],
        END_OF_TEXT
    );
    assert_eq!(
        read_json(&s.out.join("config.json"))["torch_dtype"],
        "bfloat16"
    );
    let back = Llama::load(&s.out, DType::BF16, &Device::Cpu).unwrap();
    assert_same_tensors(&s.model, &back, DType::BF16);
    // exporting again from the bf16 folder keeps bf16 (the stored dtype)
    let again = s.root.join("hf2");
    let summary = export(&ExportSpec {
        model: &s.out,
        out: &again,
        ..spec(&s)
    })
    .unwrap();
    assert_eq!(summary.dtype, DType::BF16);
}

#[test]
fn bad_inputs_are_refused_without_output() {
    let s = setup(40);
    let err = export(&spec(&s)).unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::VocabTooSmall {
                model: 40,
                tokenizer: 46,
                ..
            }
        ),
        "{err}"
    );
    assert!(!s.out.exists());

    let s = setup(48);
    std::fs::create_dir(&s.out).unwrap();
    assert!(matches!(
        export(&spec(&s)).unwrap_err(),
        ExportError::OutputExists { .. }
    ));

    let cfg_path = s.root.join("tokenizer_config.json");
    std::fs::write(&cfg_path, r#"{"bos_token": "<s>", "eos_token": "</s>"}"#).unwrap();
    let out = s.root.join("hf-other");
    let err = export(&ExportSpec {
        tokenizer_config: Some(&cfg_path),
        out: &out,
        ..spec(&s)
    })
    .unwrap_err();
    assert!(err.to_string().contains("<s>"), "{err}");
    assert!(!out.exists());
}

const HF_SCRIPT: &str = r#"
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d)
ids = [tok.bos_token_id] + tok("the cat sat on the big red mat and then", add_special_tokens=False).input_ids
out = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)
chat = tok.apply_chat_template([{"role": "user", "content": " hi there "}], tokenize=False,
                               add_generation_prompt=True)
print(json.dumps({"prompt": ids, "generated": out[0, len(ids):].tolist(), "bos": tok.bos_token_id,
                  "eos": tok.eos_token_id, "stop": model.generation_config.eos_token_id,
                  "dtype": str(model.dtype), "chat": chat}))
"#;

fn python_ok() -> bool {
    Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn transformers_loads_the_export_and_decodes_like_us() {
    if !python_ok() {
        eprintln!(
            "export: transformers check skipped (python3 cannot import torch and transformers)"
        );
        return;
    }
    let s = setup(48);
    let summary = export(&spec(&s)).unwrap();
    let o = Command::new("python3")
        .args(["-c", HF_SCRIPT])
        .arg(&s.out)
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(o.stdout.trim_ascii()).unwrap();
    assert_eq!(v["bos"], BOS);
    assert_eq!(v["eos"], EOT);
    assert_eq!(v["stop"], json!([END_OF_TEXT, EOT]));
    assert_eq!(v["dtype"], "torch.float32");
    assert_eq!(
        v["chat"],
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi there<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let prompt: Vec<u32> = serde_json::from_value(v["prompt"].clone()).unwrap();
    assert_eq!(prompt.len(), 11, "bos and ten known words");
    assert!(!prompt.contains(&0), "every word is in the vocabulary");
    let mut theirs: Vec<u32> = serde_json::from_value(v["generated"].clone()).unwrap();
    // transformers keeps the stop token it ends on; generate_greedy does not
    if theirs
        .last()
        .is_some_and(|t| summary.stop_token_ids.contains(t))
    {
        theirs.pop();
    }
    let ours = s
        .model
        .generate_greedy(&prompt, 10, &summary.stop_token_ids)
        .unwrap();
    eprintln!("export: greedy continuation {ours:?}");
    assert!(
        ours.len() >= 5,
        "a continuation long enough to compare: {ours:?}"
    );
    assert_eq!(ours, theirs);
}

/// With the real Llama-3 tokenizer (fixtures/cache/tokenizer.json, when fetched): the
/// default config names its special tokens 128000 / 128009 and stops at 128001 and 128009.
#[test]
fn llama3_tokenizer_gets_meta_ids() {
    let Some(path) = fixture("tokenizer.json", "llama3_tokenizer_gets_meta_ids") else {
        return;
    };
    let s = setup(128_256);
    let summary = export(&ExportSpec {
        tokenizer: &path,
        ..spec(&s)
    })
    .unwrap();
    assert_eq!(summary.tokenizer_vocab_size, 128_256);
    assert_eq!(
        (summary.bos_token_id, summary.eos_token_id),
        (128_000, 128_009)
    );
    assert_eq!(summary.stop_token_ids, [128_001, 128_009]);
    assert_eq!(
        read_json(&s.out.join("config.json"))["eos_token_id"],
        128_009
    );
}
