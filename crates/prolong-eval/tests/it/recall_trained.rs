//! A tiny Llama trained here to copy from its context scores higher on recall than the
//! same model untrained, both scored by the `prolong-eval recall` command.
//!
//! What the model has to learn is an induction head: find the earlier occurrence of the
//! current token and copy the token that followed it. That is all niah_multivalue asks
//! of it: each needle value follows a lone " " token (`is: 1234567.`), the answer starts
//! with " ", and any of the four values counts. Two things make that learnable in a
//! few CPU-minutes by a 2-layer, 64-wide model:
//! * a tokenizer (built here) that cuts numbers into digit pairs, so a value is four
//!   tokens out of 113 that can be copied, and whole words of the prompt are one token;
//! * most of each step is short documents of random copyable tokens repeated once
//!   (`BOS a b c … BOS a b c …`, loss on the repeat): the circuit forms after a few
//!   hundred steps there, where it does not on recall prompts alone. The rest is
//!   niah_multivalue instances (another seed than the evaluation's) with the loss on
//!   their answers, which teaches the answer format.

use std::path::Path;
use std::process::Command;

use crate::recall_common::{SMALL_PROSE, bpe_tokenizer_json, byte_char, small_prose, succeeded};
use candle_core::{DType, Device};
use prolong_eval::recall::{Instance, RecallReport, Task, generate};
use prolong_tokenizer::Tokenizer;
use prolong_train::data::rng::{SplitMix64, derive_seed};
use prolong_train::optim::{AdamW, AdamWConfig, CosineSchedule, Gradients};
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig, PackedSequence};

const BOS: u32 = 0;
const EOS: u32 = 1;
/// Prompt + generation budget of every instance, trained and evaluated.
const LENGTH: usize = 384;
const TRAIN_SEED: u64 = 1;
const EVAL_SEED: u64 = 999;
/// Evaluated instances per model.
const EVAL_SAMPLES: usize = 20;
const STEPS: u64 = 700;
/// Per step: rows of repeated random tokens, and niah_multivalue instances (the
/// training seed's, never the evaluated ones).
const REPEAT_ROWS: usize = 4;
const RECALL_INSTANCES: usize = 4;

/// Llama-3's pre-tokenizer pattern with numbers cut into pairs of digits (`{1,2}`, not
/// `{1,3}`).
const SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A byte-level BPE tokenizer.json: the 256 bytes, the 100 digit pairs, and one token
/// for each word of the recall prompt and of [`SMALL_PROSE`] (with its leading space,
/// or at the start of a line); ids 0 and 1 are BOS and EOS.
fn copy_tokenizer_json() -> String {
    let mut vocab: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut merges: Vec<(String, String)> = Vec::new();
    for a in 0..10 {
        for b in 0..10 {
            merges.push((a.to_string(), b.to_string()));
            vocab.push(format!("{a}{b}"));
        }
    }
    let text = format!(
        "{SMALL_PROSE} Some special magic numbers are hidden within the following text. \
         Make sure to memorize it. I will quiz you about the numbers afterwards. What are \
         all the special magic numbers for mentioned in the provided text? The special magic \
         numbers for mentioned in the provided text are One of the special magic numbers for is"
    );
    let spaced = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| format!("Ġ{w}"));
    let line_starts = [
        "Some", "Make", "What", "The", "One", "It", "Call", "Happy", "Who",
    ];
    for word in spaced.chain(line_starts.map(String::from)) {
        let chars: Vec<char> = word.chars().collect();
        let mut prefix = chars[0].to_string();
        for &c in &chars[1..] {
            let longer = format!("{prefix}{c}");
            if !vocab.contains(&longer) {
                merges.push((prefix.clone(), c.to_string()));
                vocab.push(longer.clone());
            }
            prefix = longer;
        }
    }
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, serde_json::Value::from(i as u32 + 2)))
        .collect();
    let pre_tokenizer = serde_json::json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]});
    bpe_tokenizer_json(ids, &merges, (BOS, EOS), pre_tokenizer)
}

/// The ids a value is written with: the digit pairs, single digits, " ", "," and ".".
fn copyable_ids(tok: &Tokenizer) -> Vec<u32> {
    let mut texts: Vec<String> = (0..100).map(|n| format!("{n:02}")).collect();
    texts.extend((0..10).map(|n| n.to_string()));
    texts.extend([" ", ",", "."].map(String::from));
    texts
        .iter()
        .map(|t| {
            let ids = tok.encode(t).unwrap();
            assert_eq!(ids.len(), 1, "{t:?} is one token");
            ids[0]
        })
        .collect()
}

/// A packed sequence under construction: documents, and the mask of predicted tokens.
#[derive(Default)]
struct Batch {
    ids: Vec<u32>,
    indices: Vec<[usize; 2]>,
    mask: Vec<u8>,
}

impl Batch {
    /// Appends a document whose tokens from `predicted_from` on are trained on.
    fn push(&mut self, doc: Vec<u32>, predicted_from: usize) {
        let start = self.ids.len();
        self.mask
            .extend((0..doc.len()).map(|i| u8::from(i >= predicted_from)));
        self.ids.extend(doc);
        self.indices.push([start, self.ids.len()]);
    }

    /// About `tokens` tokens of documents `BOS a₁…aₙ a₁…aₙ` (n in 4..16, aᵢ drawn from
    /// `copyable`), trained on the repeat from a₂ on (a₁ cannot be known).
    fn push_repeats(&mut self, tokens: usize, copyable: &[u32], rng: &mut SplitMix64) {
        let mut made = 0;
        while made < tokens {
            let n = 4 + rng.below(12) as usize;
            let run: Vec<u32> = (0..n)
                .map(|_| copyable[rng.below(copyable.len() as u64) as usize])
                .collect();
            let mut doc = vec![BOS];
            doc.extend(&run);
            doc.extend(&run);
            made += doc.len();
            self.push(doc, n + 2);
        }
    }

    /// A recall instance followed by its answer (values in the order they appear, then
    /// EOS), trained on the answer.
    fn push_answered(&mut self, inst: &Instance, tok: &Tokenizer) {
        let mut doc = vec![BOS];
        doc.extend(tok.encode(&inst.input).unwrap());
        let prompt = doc.len();
        let mut order: Vec<usize> = (0..inst.answers.len()).collect();
        order.sort_by(|&a, &b| inst.depths[a].total_cmp(&inst.depths[b]));
        let values: Vec<&str> = order.iter().map(|&i| inst.answers[i].as_str()).collect();
        doc.extend(tok.encode(&format!(" {}", values.join(", "))).unwrap());
        doc.push(EOS);
        self.push(doc, prompt);
    }

    fn into_sequence(self) -> PackedSequence {
        PackedSequence::new(self.ids, &self.indices, Some(&self.mask)).unwrap()
    }
}

/// Trains `model` for [`STEPS`] steps; returns the mean training loss of the last 50.
fn train(model: &mut Llama, tok: &Tokenizer) -> f64 {
    let copyable = copyable_ids(tok);
    let schedule = CosineSchedule::new(3e-3, 0.05, STEPS, 0.1);
    let config = AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::default()
    };
    let mut optimizer = AdamW::new(config, model.params()).unwrap();
    let mut recent = Vec::new();
    for step in 0..STEPS {
        let mut rng = SplitMix64::new(derive_seed(TRAIN_SEED, &[step]));
        let mut batch = Batch::default();
        for _ in 0..REPEAT_ROWS {
            batch.push_repeats(LENGTH, &copyable, &mut rng);
        }
        for i in 0..RECALL_INSTANCES {
            let sample = (step as usize) * RECALL_INSTANCES + i;
            let inst = generate(
                Task::NiahMultivalue,
                LENGTH,
                sample,
                TRAIN_SEED,
                tok,
                Some(small_prose()),
            )
            .unwrap();
            batch.push_answered(&inst, tok);
        }
        let (loss, grads) = model.loss_and_grads(&batch.into_sequence()).unwrap();
        let mut g = Gradients::default();
        g.add(&grads).unwrap();
        g.clip(1.0).unwrap();
        optimizer
            .update(model.params_mut(), &g, schedule.lr(step))
            .unwrap();
        if step % 100 == 0 {
            eprintln!("step {step}: loss {:.3}", loss.loss);
        }
        if step + 50 >= STEPS {
            recent.push(loss.loss);
        }
    }
    recent.iter().sum::<f64>() / recent.len() as f64
}

/// `prolong-eval recall` of the checkpoint in `model` on niah_multivalue at [`LENGTH`]:
/// the mean score of its instances, read back from recall.json.
fn recall_score(model: &Path, tok: &Path, prose: &Path, out: &Path) -> (f64, RecallReport) {
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_prolong-eval"))
        .args(["recall", "--model", &s(model), "--tokenizer", &s(tok)])
        .args(["--haystack", &s(prose), "--tasks", "niah_multivalue"])
        .args([
            "--lengths",
            &LENGTH.to_string(),
            "--samples",
            &EVAL_SAMPLES.to_string(),
        ])
        .args(["--seed", &EVAL_SEED.to_string(), "--out", &s(out)])
        .output()
        .unwrap();
    succeeded(output);
    let report: RecallReport =
        serde_json::from_slice(&std::fs::read(out.join("recall.json")).unwrap()).unwrap();
    assert_eq!(report.instances.len(), EVAL_SAMPLES);
    let mean = report.instances.iter().map(|i| i.score).sum::<f64>() / EVAL_SAMPLES as f64;
    (mean, report)
}

#[test]
fn a_model_trained_to_copy_from_its_context_scores_higher_on_recall() {
    let dir = tempfile::tempdir().unwrap();
    let tok_path = dir.path().join("tokenizer.json");
    std::fs::write(&tok_path, copy_tokenizer_json()).unwrap();
    let prose = dir.path().join("prose.txt");
    std::fs::write(&prose, SMALL_PROSE).unwrap();
    let tok = Tokenizer::from_file(&tok_path).unwrap();

    let config = LlamaConfig::from_json(&format!(
        r#"{{"vocab_size": {}, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
            "rope_theta": 10000.0, "tie_word_embeddings": true,
            "bos_token_id": {BOS}, "eos_token_id": [{EOS}], "model_type": "llama"}}"#,
        tok.vocab_size()
    ))
    .unwrap();
    let mut model = random_llama(&config, 7, 0.1, DType::F32, &Device::Cpu).unwrap();
    let untrained = dir.path().join("untrained");
    model.save(&untrained).unwrap();
    let final_loss = train(&mut model, &tok);
    let trained = dir.path().join("trained");
    model.save(&trained).unwrap();

    let (before, _) = recall_score(&untrained, &tok_path, &prose, &dir.path().join("r0"));
    let (after, report) = recall_score(&trained, &tok_path, &prose, &dir.path().join("r1"));
    let predictions: Vec<&str> = report
        .instances
        .iter()
        .map(|i| i.prediction.as_str())
        .collect();
    eprintln!("recall {before:.3} untrained → {after:.3} trained (training loss {final_loss:.3})");
    assert!(
        after >= before + 0.05,
        "recall {before:.3} untrained → {after:.3} trained (training loss {final_loss:.3}); \
         predictions: {predictions:?}"
    );
}
