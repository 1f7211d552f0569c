//! A checkpoint as an HF model folder that transformers (`AutoModelForCausalLM`,
//! `AutoTokenizer`) and HELMET load directly:
//!
//! * `config.json` — the checkpoint's config (unknown keys kept) with `architectures`,
//!   `model_type`, `bos_token_id`, `eos_token_id` and `torch_dtype` set;
//! * `model.safetensors` (sharded when large) — written by [`Llama::save`];
//! * `tokenizer.json` — copied byte for byte;
//! * `tokenizer_config.json` — the one given, or Llama-3's ([`llama3_tokenizer_config`]):
//!   bos `<|begin_of_text|>`, eos `<|eot_id|>`, the Llama-3 chat template;
//! * `generation_config.json` — bos/eos ids and `do_sample: false` (greedy).
//!
//! Everything is written into a temporary folder beside the output, which is renamed to
//! it at the end: the output folder appears complete or not at all.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use prolong_tokenizer::{LLAMA3_BOS, LLAMA3_EOS, LLAMA3_EOT, TokenizeError, Tokenizer};
use prolong_train::checkpoint::{CONFIG_FILE, load_tensors};
use prolong_train::{Llama, LlamaConfig, LlamaParams};
use serde_json::{Value, json};

pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// Llama-3's chat format: `bos`, then per message
/// `<|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>` (content trimmed), and
/// with `add_generation_prompt` an open assistant header.
pub const LLAMA3_CHAT_TEMPLATE: &str = concat!(
    "{{- bos_token }}",
    "{%- for message in messages %}",
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}",
    "{{- message['content'] | trim }}",
    "{{- '<|eot_id|>' }}",
    "{%- endfor %}",
    "{%- if add_generation_prompt %}",
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}",
    "{%- endif %}",
);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Model(#[from] prolong_train::Error),
    #[error("{path}: {source}")]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: TokenizeError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the folder or one of its files (the error names the path).
    #[error(transparent)]
    Write(#[from] prolong_mds::MdsError),
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the checkpoint's vocab_size {model} is smaller than the tokenizer's {tokenizer} tokens ({path})"
    )]
    VocabTooSmall {
        model: usize,
        tokenizer: usize,
        path: PathBuf,
    },
    #[error("{path}: {msg}")]
    Token { path: PathBuf, msg: String },
    #[error("{path} already exists; remove it or choose another --out")]
    OutputExists { path: PathBuf },
}

/// What [`export`] reads and where it writes.
#[derive(Debug, Clone)]
pub struct ExportSpec<'a> {
    /// Checkpoint folder (config.json + safetensors).
    pub model: &'a Path,
    pub tokenizer: &'a Path,
    /// `None`: Llama-3's ([`llama3_tokenizer_config`]).
    pub tokenizer_config: Option<&'a Path>,
    /// Weights dtype; `None`: as stored in the checkpoint.
    pub dtype: Option<DType>,
    /// The HF folder to create (must not exist).
    pub out: &'a Path,
}

/// What was exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub dtype: DType,
    pub vocab_size: usize,
    pub tokenizer_vocab_size: usize,
    pub bos_token_id: u32,
    /// `eos_token_id` of config.json (the tokenizer config's eos token).
    pub eos_token_id: u32,
    /// `eos_token_id` of generation_config.json: generation stops at any of them.
    pub stop_token_ids: Vec<u32>,
}

/// Writes the HF folder `spec.out` (see the module docs).
pub fn export(spec: &ExportSpec) -> Result<ExportSummary, ExportError> {
    if spec.out.exists() {
        return Err(ExportError::OutputExists {
            path: spec.out.into(),
        });
    }
    let tokenizer =
        Tokenizer::from_file(spec.tokenizer).map_err(|source| ExportError::Tokenizer {
            path: spec.tokenizer.into(),
            source,
        })?;
    let model = load_model(spec.model, spec.dtype)?;
    let vocab_size = model.config().vocab_size;
    if vocab_size < tokenizer.vocab_size() {
        return Err(ExportError::VocabTooSmall {
            model: vocab_size,
            tokenizer: tokenizer.vocab_size(),
            path: spec.tokenizer.into(),
        });
    }
    let (tok_config, tok_config_path) = match spec.tokenizer_config {
        Some(path) => (read_json(path)?, path.to_path_buf()),
        None => (
            llama3_tokenizer_config(),
            PathBuf::from("(Llama-3 default)"),
        ),
    };
    let id_of = |field: &str| -> Result<u32, ExportError> {
        let content = special_token(&tok_config, field).ok_or_else(|| ExportError::Token {
            path: tok_config_path.clone(),
            msg: format!("no `{field}`"),
        })?;
        tokenizer
            .added_token_id(content)
            .ok_or_else(|| ExportError::Token {
                path: spec.tokenizer.into(),
                msg: format!("no added token {content:?} (the {field} of {TOKENIZER_CONFIG_FILE})"),
            })
    };
    let (bos, eos) = (id_of("bos_token")?, id_of("eos_token")?);
    let mut stop = vec![eos];
    if spec.tokenizer_config.is_none() {
        // Llama-3: a base model ends documents with <|end_of_text|>, a chat turn ends
        // with <|eot_id|>; greedy generation stops at either (as Meta's instruct models).
        stop = [LLAMA3_EOS.text, LLAMA3_EOT.text]
            .iter()
            .filter_map(|t| tokenizer.added_token_id(t))
            .collect();
    }
    let dtype = model.dtype();

    prolong_mds::write_atomic_dir(spec.out, |tmp| {
        write_folder(tmp, spec, &model, &tok_config, bos, eos, &stop)
    })?;
    Ok(ExportSummary {
        dtype,
        vocab_size,
        tokenizer_vocab_size: tokenizer.vocab_size(),
        bos_token_id: bos,
        eos_token_id: eos,
        stop_token_ids: stop,
    })
}

fn write_folder(
    dir: &Path,
    spec: &ExportSpec,
    model: &Llama,
    tok_config: &Value,
    bos: u32,
    eos: u32,
    stop: &[u32],
) -> Result<(), ExportError> {
    let mut config = model.config().clone();
    hf_config_keys(&mut config, model.dtype(), bos, eos);
    Llama::new(config, model.params().clone())?.save(dir)?;
    let to = dir.join(TOKENIZER_FILE);
    prolong_mds::write_atomic_path(&to, |tmp| match std::fs::copy(spec.tokenizer, tmp) {
        Ok(_bytes) => Ok(()),
        Err(source) => Err(ExportError::Io {
            path: to.clone(),
            source,
        }),
    })?;
    write_json(&dir.join(TOKENIZER_CONFIG_FILE), tok_config)?;
    let generation = json!({
        "bos_token_id": bos,
        "eos_token_id": if stop.len() == 1 { json!(stop[0]) } else { json!(stop) },
        "do_sample": false,
    });
    write_json(&dir.join(GENERATION_CONFIG_FILE), &generation)
}

/// The keys transformers reads from config.json beyond the architecture itself.
fn hf_config_keys(config: &mut LlamaConfig, dtype: DType, bos: u32, eos: u32) {
    let extra = &mut config.extra;
    extra
        .entry("architectures")
        .or_insert_with(|| json!(["LlamaForCausalLM"]));
    extra.insert("model_type".into(), json!("llama"));
    extra.insert("bos_token_id".into(), json!(bos));
    extra.insert("eos_token_id".into(), json!(eos));
    // `torch_dtype` is read by every transformers version; a stale `dtype` (4.56+) would
    // override it.
    extra.remove("dtype");
    extra.insert("torch_dtype".into(), json!(torch_dtype(dtype)));
}

fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Llama-3's tokenizer_config.json: `<|begin_of_text|>` / `<|eot_id|>` and
/// [`LLAMA3_CHAT_TEMPLATE`].
pub fn llama3_tokenizer_config() -> Value {
    json!({
        "bos_token": LLAMA3_BOS.text,
        "eos_token": LLAMA3_EOT.text,
        "chat_template": LLAMA3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": true,
        "model_input_names": ["input_ids", "attention_mask"],
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
}

/// A special token of a tokenizer config: a string, or an object with `content`.
fn special_token<'v>(config: &'v Value, field: &str) -> Option<&'v str> {
    match config.get(field)? {
        Value::String(s) => Some(s),
        v => v.get("content")?.as_str(),
    }
}

/// The checkpoint with its weights in `dtype`, or in the dtype they are stored in.
fn load_model(dir: &Path, dtype: Option<DType>) -> Result<Llama, ExportError> {
    let config = LlamaConfig::load(dir.join(CONFIG_FILE))?;
    let mut tensors = load_tensors(dir)?;
    let stored = tensors
        .get("model.embed_tokens.weight")
        .map_or(DType::F32, |t| t.dtype());
    let dtype = dtype.unwrap_or(stored);
    let params = LlamaParams::from_named(&config, |n| tensors.remove(n), dtype, &Device::Cpu)?;
    Ok(Llama::new(config, params)?)
}

fn read_json(path: &Path) -> Result<Value, ExportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ExportError::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ExportError::Json {
        path: path.into(),
        source,
    })
}

fn write_json(path: &Path, value: &Value) -> Result<(), ExportError> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    text.push('\n');
    Ok(prolong_mds::write_atomic(path, text.as_bytes())?)
}
