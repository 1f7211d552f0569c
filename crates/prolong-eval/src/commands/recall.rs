//! `prolong-eval recall`: HELMET's Recall category (docs/eval-recall.md) for a
//! checkpoint — generate and check the instances, decode greedily, score, and write
//! the task × length table (stdout, DIR/recall.json, DIR/recall.svg).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use prolong_eval::recall::checks::check_helmet_instance;
use prolong_eval::recall::generate::{HelmetSources, generate_helmet_all};
use prolong_eval::recall::helmet::{self, ModelText, MvTemplate, Protocol, UnknownName};
use prolong_eval::recall::instance::to_jsonl;
use prolong_eval::recall::values::WordLists;
use prolong_eval::recall::{
    Instance, Plan, Prose, RecallReport, Scored, Table, Task, check_instance, generate_all, score,
};
use prolong_mds::write_atomic;
use prolong_tokenizer::{LLAMA3_BOS, Tokenizer};
use prolong_train::{Llama, LlamaConfig};
use rayon::prelude::*;

#[derive(clap::Args)]
pub struct Args {
    /// HF checkpoint directory (config.json + safetensors).
    #[arg(long, required_unless_present = "instances_only")]
    model: Option<PathBuf>,
    /// The model's tokenizer.json: sizes the prompts and decodes the generations.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Plain-text prose for niah_multivalue's haystack (e.g. the KJV, fixtures/cache/kjv.txt).
    #[arg(long)]
    haystack: Option<PathBuf>,
    /// Lengths L (prompt + generated tokens), comma-separated: 4096 or 4K; at most
    /// 1024K (1,048,576) and, with --model, at most the model's max_position_embeddings.
    #[arg(long, value_delimiter = ',', value_parser = parse_length, required = true)]
    lengths: Vec<usize>,
    /// Tasks, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "json_kv,niah_multikey_2,niah_multikey_3,niah_multivalue"
    )]
    tasks: Vec<Task>,
    /// Instances per task and length.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where recall.json and recall.svg go.
    #[arg(long, required_unless_present = "instances_only")]
    out: Option<PathBuf>,
    /// Also write the instances as JSONL (schemas/recall-instance.schema.json).
    #[arg(long)]
    save_instances: Option<PathBuf>,
    /// Only generate, check and save the instances (no model).
    #[arg(long, requires = "save_instances")]
    instances_only: bool,
    /// fill: each instance filled to 0.9 L … L − budget in the evaluated model's
    /// tokenizer, BOS first. helmet: sized as HELMET's released files are (JSON KV's
    /// fixed record counts, RULER tasks to L − 128 in --sizing-tokenizer), cut with
    /// HELMET's truncation, special tokens as HF adds them (tokenizer.json's
    /// post-processor, or a tokenizer_config.json beside it for Llama-class tokenizers).
    #[arg(long, default_value = "fill", value_parser = parse_protocol)]
    protocol: Protocol,
    /// --protocol helmet: the tokenizer.json the RULER tasks are sized in (HELMET's
    /// files: Llama-2's, fixtures/cache/llama2-tokenizer.json).
    #[arg(long)]
    sizing_tokenizer: Option<PathBuf>,
    /// niah_multivalue's wording under HELMET: head ("Some special magic numbers are
    /// …", HELMET's code since 2025-02) or paper ("A special magic numbers is …", what
    /// the published numbers were made with).
    #[arg(long, default_value = "head", value_parser = parse_mv_template)]
    mv_template: MvTemplate,
    /// --protocol helmet: a folder with RULER's word lists (adjectivelist.txt,
    /// nounlist.txt of the wonderwords package: fixtures/cache/wonderwords) for word
    /// keys, instead of this project's shorter lists.
    #[arg(long)]
    key_words: Option<PathBuf>,
    /// HELMET's `data` folder: run its released files (json_kv/test_k{N}_dep6.jsonl,
    /// ruler/<task>/validation_<L>.jsonl) instead of generating instances, with
    /// HELMET's prompts and truncation; of each file the --samples items HELMET picks
    /// (its seeded shuffle, then the first --samples: HELMET uses 100).
    #[arg(long, conflicts_with_all = ["haystack", "sizing_tokenizer", "key_words"])]
    helmet_data: Option<PathBuf>,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse().map_err(|e: UnknownName| e.to_string())
}

fn parse_mv_template(s: &str) -> Result<MvTemplate, String> {
    s.parse().map_err(|e: UnknownName| e.to_string())
}

/// The longest length `--lengths` accepts (1024K tokens): 8× HELMET's longest (128K),
/// past ProLong's 512K. An instance's text grows with L, so a bound keeps a mistyped
/// length (`1000000000`) from generating until memory runs out.
pub const MAX_LENGTH: usize = 1 << 20;

/// "4096", "4K" or "4k" (× 1024), at most [`MAX_LENGTH`].
fn parse_length(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.strip_suffix(['K', 'k']) {
        Some(d) => (d, 1024),
        None => (s, 1),
    };
    let n = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a length (e.g. 4096 or 4K)"))?;
    if n > MAX_LENGTH {
        return Err(format!(
            "{s:?} is longer than the longest length prolong-eval recall runs, {MAX_LENGTH} (1024K)"
        ));
    }
    Ok(n)
}

/// Every length fits the model's trained context (config.json's
/// `max_position_embeddings`, where it has one).
fn check_lengths_fit(config: &LlamaConfig, path: &Path, lengths: &[usize]) -> Result<()> {
    let Some(max) = config
        .extra
        .get("max_position_embeddings")
        .and_then(serde_json::Value::as_u64)
    else {
        return Ok(());
    };
    if let Some(&too_long) = lengths.iter().find(|&&l| l as u64 > max) {
        bail!(
            "--lengths {too_long} is longer than the model's trained context ({}: max_position_embeddings {max})",
            path.display()
        );
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let tok_json = std::fs::read(&args.tokenizer)
        .with_context(|| format!("reading tokenizer {}", args.tokenizer.display()))?;
    let tok = Tokenizer::from_bytes(&tok_json)
        .with_context(|| format!("tokenizer {}", args.tokenizer.display()))?;
    let helmet = args.helmet_data.is_some() || args.protocol == Protocol::Helmet;
    if !helmet && (args.sizing_tokenizer.is_some() || args.key_words.is_some()) {
        bail!("--sizing-tokenizer and --key-words are for --protocol helmet");
    }
    if !helmet && args.mv_template != MvTemplate::Head {
        bail!("--mv-template paper is for --protocol helmet or --helmet-data");
    }
    let needs_prose = args.helmet_data.is_none() && args.tasks.contains(&Task::NiahMultivalue);
    let prose = match (&args.haystack, needs_prose) {
        (Some(path), true) => Some(Prose::from_file(path)?),
        (None, true) => bail!("niah_multivalue needs --haystack (a plain-text prose file)"),
        (_, false) => None,
    };
    // The checkpoint's config first: a mismatch is reported before any work.
    let model = match (&args.model, args.instances_only) {
        (Some(dir), false) => Some((dir, ModelTokens::resolve(dir, &tok, &args.lengths)?)),
        _ => None,
    };
    let model_text = match helmet {
        true => Some(model_text(&tok, &tok_json, &args.tokenizer)?),
        false => None,
    };

    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let plan = Plan {
        tasks: first_of_each(&args.tasks),
        lengths: first_of_each(&args.lengths),
        samples: args.samples,
        seed: args.seed,
    };
    let instances = match (&model_text, &args.helmet_data) {
        (None, _) => {
            let instances = generate_all(&plan, &tok, prose.as_ref())?;
            instances.par_iter().try_for_each(|inst| {
                check_instance(inst, &tok).with_context(|| failed_check(inst))
            })?;
            instances
        }
        (Some(model_text), Some(dir)) => {
            let instances = read_helmet_data(&plan, dir, args.mv_template, model_text)?;
            instances.par_iter().try_for_each(|inst| {
                check_helmet_instance(inst, model_text, false).with_context(|| failed_check(inst))
            })?;
            instances
        }
        (Some(model_text), None) => {
            let sizing_tok;
            let sizing = match &args.sizing_tokenizer {
                Some(path) => {
                    sizing_tok = Tokenizer::from_file(path)
                        .with_context(|| format!("sizing tokenizer {}", path.display()))?;
                    &sizing_tok
                }
                None if plan.tasks.iter().all(|&t| t == Task::JsonKv) => &tok,
                None => bail!(
                    "--protocol helmet sizes the RULER tasks in --sizing-tokenizer (HELMET's files: Llama-2's tokenizer.json)"
                ),
            };
            let words = match &args.key_words {
                Some(dir) => WordLists::from_dir(dir)?,
                None => WordLists::builtin(),
            };
            let src = HelmetSources {
                sizing,
                prose: prose.as_ref(),
                words,
                mv: args.mv_template,
            };
            let instances = generate_helmet_all(&plan, &src, model_text)?;
            instances.par_iter().try_for_each(|inst| {
                check_helmet_instance(inst, model_text, true).with_context(|| failed_check(inst))
            })?;
            instances
        }
    };
    let truncated = instances.iter().filter(|i| i.truncated_tokens > 0).count();
    eprintln!(
        "{} instances {} and checked{}",
        instances.len(),
        if args.helmet_data.is_some() {
            "read"
        } else {
            "generated"
        },
        if truncated > 0 {
            format!(" ({truncated} truncated as HELMET truncates)")
        } else {
            String::new()
        }
    );
    if let Some(path) = &args.save_instances {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomic(path, &to_jsonl(&instances)?)?;
        eprintln!("instances → {}", path.display());
    }
    let (Some((dir, ids)), Some(out)) = (model, &args.out) else {
        return Ok(());
    };

    let llama = Llama::load(dir, DType::F32, &Device::Cpu)
        .with_context(|| format!("model {}", dir.display()))?;
    let mut scored = Vec::with_capacity(instances.len());
    for (i, inst) in instances.iter().enumerate() {
        let prompt = match (&model_text, inst.protocol) {
            (Some(m), Protocol::Helmet) => m.ids(&inst.input)?,
            _ => {
                let mut prompt = vec![ids.bos];
                prompt.extend(tok.encode(&inst.input)?);
                prompt
            }
        };
        let generated = llama.generate_greedy(&prompt, inst.max_new_tokens, &ids.stop)?;
        let prediction = tok.decode(&generated)?;
        let s = score(inst.task, &prediction, &inst.answers);
        eprintln!(
            "[{}/{}] {} {} #{}: {s:.2}",
            i + 1,
            instances.len(),
            inst.task,
            inst.length,
            inst.sample
        );
        scored.push(Scored {
            task: inst.task,
            length: inst.length,
            sample: inst.sample,
            answers: inst.answers.clone(),
            depths: inst.depths.clone(),
            prompt_tokens: inst.prompt_tokens,
            prediction,
            generated_tokens: generated.len(),
            score: s,
        });
    }
    let table = Table::new(&plan.tasks, &plan.lengths, &scored);
    print!("{}", table.to_text());
    write_report(out, dir, &args, table, scored)
}

/// The model's tokenizer as HF loads it from the folder of `path`: tokenizer.json's
/// post-processor, or, for the classes whose tokenizer_config.json decides it, that
/// file's add_bos_token / add_eos_token.
fn model_text<'t>(tok: &'t Tokenizer, json: &[u8], path: &Path) -> Result<ModelText<'t>> {
    let mut text =
        ModelText::new(tok, json).with_context(|| format!("tokenizer {}", path.display()))?;
    let config_path = path.with_file_name("tokenizer_config.json");
    if config_path.exists() {
        let bytes = std::fs::read(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let config: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not JSON", config_path.display()))?;
        text.apply_tokenizer_config(&config)
            .with_context(|| config_path.display().to_string())?;
    }
    Ok(text)
}

fn failed_check(inst: &Instance) -> String {
    format!(
        "{} at length {} (sample {}) fails a check",
        inst.task, inst.length, inst.sample
    )
}

/// The instances of HELMET's files under `dir` for `plan`'s tasks and lengths: of
/// each file the `plan.samples` items HELMET picks, in its order.
fn read_helmet_data(
    plan: &Plan,
    dir: &Path,
    mv: MvTemplate,
    model: &ModelText,
) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    for &task in &plan.tasks {
        for &length in &plan.lengths {
            let path = helmet::data_file(dir, task, length)
                .ok_or(helmet::HelmetDataError::NoFile(length))?;
            let items = helmet::read_data_file(&path, task, plan.samples)?;
            let made: Vec<Result<Instance>> = items
                .par_iter()
                .enumerate()
                .map(|(sample, (line, item))| {
                    let units = helmet::units_of(item);
                    helmet::instance(item, mv, length, sample, 0, Vec::new(), units, model)
                        .with_context(|| format!("{}:{line}", path.display()))
                })
                .collect();
            for inst in made {
                out.push(inst?);
            }
        }
    }
    Ok(out)
}

/// `items` without repeats, in the order first given.
fn first_of_each<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn write_report(
    out: &Path,
    model: &Path,
    args: &Args,
    table: Table,
    scored: Vec<Scored>,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let title = format!("Recall: {}", model.display());
    write_atomic(&out.join("recall.svg"), table.svg(&title).as_bytes())?;
    let protocol = match (&args.helmet_data, args.protocol) {
        (Some(dir), _) => format!("helmet-data {}", dir.display()),
        (None, p) => p.name().to_owned(),
    };
    let report = RecallReport {
        model: model.display().to_string(),
        protocol,
        mv_template: args.mv_template.name().to_owned(),
        seed: args.seed,
        samples: args.samples,
        table,
        instances: scored,
    };
    let mut json = serde_json::to_vec_pretty(&report)?;
    json.push(b'\n');
    write_atomic(&out.join("recall.json"), &json)?;
    eprintln!("report → {}", out.join("recall.json").display());
    Ok(())
}

/// The token ids the prompt starts with and generation stops at.
struct ModelTokens {
    bos: u32,
    stop: Vec<u32>,
}

impl ModelTokens {
    /// From the checkpoint's generation_config.json when it has them (what HF's
    /// `generate` stops at), else its config.json (`bos_token_id`, `eos_token_id`: a
    /// number or a list), else the tokenizer's usual special tokens; checks that the
    /// model's vocabulary covers the tokenizer's.
    fn resolve(dir: &Path, tok: &Tokenizer, lengths: &[usize]) -> Result<ModelTokens> {
        let path = dir.join(prolong_train::checkpoint::CONFIG_FILE);
        let config =
            LlamaConfig::load(&path).with_context(|| format!("model {}", dir.display()))?;
        check_lengths_fit(&config, &path, lengths)?;
        if config.vocab_size < tok.vocab_size() {
            bail!(
                "{}: vocab_size {} does not cover the tokenizer's {} tokens (wrong --tokenizer?)",
                path.display(),
                config.vocab_size,
                tok.vocab_size()
            );
        }
        let generation = generation_config(dir)?;
        let ids = |key: &str| -> Vec<u32> {
            let id_list = |v: &serde_json::Value| -> Vec<u32> {
                match v {
                    serde_json::Value::Array(a) => a.iter().filter_map(as_id).collect(),
                    v => as_id(v).into_iter().collect(),
                }
            };
            let from_generation = generation.get(key).map(id_list).unwrap_or_default();
            if from_generation.is_empty() {
                config.extra.get(key).map(id_list).unwrap_or_default()
            } else {
                from_generation
            }
        };
        let named = |names: &[&str]| -> Vec<u32> {
            names.iter().filter_map(|n| tok.added_token_id(n)).collect()
        };
        let mut bos = ids("bos_token_id");
        if bos.is_empty() {
            bos = named(&[LLAMA3_BOS.text, "<s>"]);
        }
        let Some(&bos) = bos.first() else {
            bail!(
                "{}: no bos_token_id, and the tokenizer has no <|begin_of_text|> or <s>",
                path.display()
            );
        };
        let mut stop = ids("eos_token_id");
        if stop.is_empty() {
            stop = named(&["<|end_of_text|>", "</s>"]);
        }
        if stop.is_empty() {
            eprintln!("note: no eos_token_id: every generation runs to its budget");
        }
        if let Some(bad) = stop
            .iter()
            .chain([&bos])
            .find(|&&id| id as usize >= config.vocab_size)
        {
            bail!(
                "{}: token id {bad} is outside vocab_size {}",
                path.display(),
                config.vocab_size
            );
        }
        Ok(ModelTokens { bos, stop })
    }
}

/// The keys of `dir/generation_config.json`; none when the file is absent.
fn generation_config(dir: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let path = dir.join("generation_config.json");
    if !path.exists() {
        return Ok(serde_json::Map::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a JSON object", path.display()))
}

fn as_id(v: &serde_json::Value) -> Option<u32> {
    v.as_u64().and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::{MAX_LENGTH, parse_length};

    #[test]
    fn lengths_in_tokens_or_k() {
        assert_eq!(parse_length("4096"), Ok(4096));
        assert_eq!(parse_length("128K"), Ok(131072));
        assert_eq!(parse_length("8k"), Ok(8192));
        assert!(
            parse_length("0").is_err() && parse_length("4M").is_err() && parse_length("K").is_err()
        );
        assert_eq!(parse_length("1024K"), Ok(MAX_LENGTH));
        let err = parse_length("1000000000").unwrap_err();
        assert!(
            err.contains("longer than") && err.contains("1048576"),
            "{err}"
        );
        assert!(parse_length("1025K").is_err() && parse_length("1048577").is_err());
    }
}
