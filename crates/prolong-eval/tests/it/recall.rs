//! Recall generators, checks, scorers and reports (docs/eval-recall.md).
//!
//! Sizing and checks run with a byte-level tokenizer written here (no fixtures) and,
//! when fixtures/cache holds them, with the Llama-3 tokenizer and the KJV (skipping
//! with a message otherwise).

use std::collections::HashSet;
use std::path::PathBuf;

use crate::recall_common::{
    BOS, EOS, SMALL_PROSE, bpe_tokenizer_json, byte_tokenizer, byte_tokenizer_json, fixture,
    llama3, small_prose,
};
use prolong_eval::recall::checks::check_helmet_instance;
use prolong_eval::recall::checks::{CheckError, check_answers, check_budget};
use prolong_eval::recall::fit::{FitError, Haystack, fit};
use prolong_eval::recall::generate::{HelmetSources, generate_helmet_all, helmet_item};
use prolong_eval::recall::helmet::{HelmetItem, ModelText, MvTemplate, Protocol, helmet_selection};
use prolong_eval::recall::instance::{read_jsonl, to_jsonl};
use prolong_eval::recall::json_kv::DEPTHS;
use prolong_eval::recall::score::{json_kv_match, normalize, ruler_recall};
use prolong_eval::recall::values::WordLists;
use prolong_eval::recall::{
    Instance, Plan, RecallReport, Scored, Table, Task, check_instance, generate, generate_all,
    score,
};
use prolong_tokenizer::Tokenizer;

// ---------------------------------------------------------------------------
// Generation and checks.

/// Every check, plus the task-specific shape of the prompt.
fn assert_valid(inst: &Instance, tok: &Tokenizer) {
    let what = format!("{} at {} sample {}", inst.task, inst.length, inst.sample);
    check_instance(inst, tok).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(inst.max_new_tokens, inst.task.max_new_tokens());
    assert_eq!(inst.depths.len(), inst.answers.len(), "{what}");
    assert!(
        inst.depths.iter().all(|d| (0.0..=1.0).contains(d)),
        "{what}"
    );
    match inst.task {
        Task::JsonKv => {
            assert_eq!(inst.depths, [DEPTHS[inst.sample % DEPTHS.len()]], "{what}");
            assert!(inst.input.starts_with("JSON data:\n{\""), "{what}");
            assert!(
                inst.input.ends_with(&format!(
                    "\n\nKey: \"{}\"\nCorresponding value:",
                    inst.query
                )),
                "{what}"
            );
            // Filler records + gold + two demonstrations, each key and value fresh.
            let records = inst.input.matches("\": \"").count();
            assert_eq!(records, inst.haystack_units + 3, "{what}");
            assert_eq!(
                inst.input.matches("Corresponding value: ").count(),
                2,
                "{what}"
            );
            // The demonstrations and the gold key are repeated below the object.
            assert_uuids(&inst.input, 2 * records + 5, 2 * records, &what);
        }
        Task::NiahMultikey2 | Task::NiahMultikey3 => {
            let noun = if inst.task == Task::NiahMultikey2 {
                "number"
            } else {
                "uuid"
            };
            assert!(
                inst.input.starts_with(&format!(
                    "A special magic {noun} is hidden within the following text. Make sure to memorize it. I will quiz you about the {noun} afterwards.\nOne of the special magic {noun}s for "
                )),
                "{what}"
            );
            assert!(inst.input.ends_with(&format!(
                ".\nWhat is the special magic {noun} for {q} mentioned in the provided text?\nThe special magic {noun} for {q} mentioned in the provided text is",
                q = inst.query
            )));
            let lines: Vec<&str> = inst.input.lines().collect();
            let needles = &lines[1..lines.len() - 2];
            assert_eq!(needles.len(), inst.haystack_units + 1, "{what}");
            let mut keys = HashSet::new();
            for line in needles {
                let rest = line
                    .strip_prefix(&format!("One of the special magic {noun}s for "))
                    .unwrap_or_else(|| panic!("{what}: line {line:?}"));
                let (key, value) = rest.split_once(" is: ").unwrap();
                assert!(keys.insert(key), "{what}: key {key} repeats");
                let value = value.strip_suffix('.').unwrap();
                if inst.task == Task::NiahMultikey2 {
                    assert!(key.split_once('-').is_some(), "{what}: {key}");
                    assert!(
                        value.len() == 7 && value.parse::<u32>().is_ok(),
                        "{what}: {value}"
                    );
                }
            }
            if inst.task == Task::NiahMultikey3 {
                // The query is repeated in the question.
                assert_uuids(&inst.input, 2 * needles.len() + 2, 2 * needles.len(), &what);
            }
            assert!(keys.contains(inst.query.as_str()));
        }
        Task::NiahMultivalue => {
            assert_eq!(inst.answers.len(), 4);
            assert!(inst.input.starts_with(
                "Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n"
            ));
            assert!(inst.input.ends_with(&format!(
                "\nWhat are all the special magic numbers for {q} mentioned in the provided text?\nThe special magic numbers for {q} mentioned in the provided text are",
                q = inst.query
            )));
            assert_eq!(inst.input.lines().count(), 4, "{what}: prose on one line");
            for a in &inst.answers {
                let needle = format!(
                    "One of the special magic numbers for {} is: {a}.",
                    inst.query
                );
                assert_eq!(inst.input.matches(&needle).count(), 1, "{what}");
            }
            let distinct: HashSet<_> = inst.depths.iter().map(|d| d.to_bits()).collect();
            assert_eq!(distinct.len(), 4, "{what}: depths {:?}", inst.depths);
        }
    }
}

/// `text` holds `total` UUID v4s, `distinct` of them different.
fn assert_uuids(text: &str, total: usize, distinct: usize, what: &str) {
    let uuids: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .filter(|w| w.len() == 36 && w.matches('-').count() == 4)
        .collect();
    assert_eq!(uuids.len(), total, "{what}");
    assert_eq!(
        uuids.iter().collect::<HashSet<_>>().len(),
        distinct,
        "{what}"
    );
    for u in uuids {
        assert_eq!(&u[14..15], "4", "{what}: {u}");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{what}: {u}");
    }
}

#[test]
fn byte_tokenizer_instances_pass_the_checks() {
    let tok = byte_tokenizer();
    let plan = Plan {
        tasks: Task::ALL.to_vec(),
        lengths: vec![1024, 4096],
        samples: 6,
        seed: 5,
    };
    let all = generate_all(&plan, tok, Some(small_prose())).unwrap();
    assert_eq!(all.len(), 4 * 2 * 6);
    for inst in &all {
        assert_valid(inst, tok);
    }
}

#[test]
fn llama3_instances_pass_the_checks_at_1k_4k_16k() {
    let Some((tok, kjv)) = llama3("llama3_instances_pass_the_checks_at_1k_4k_16k") else {
        return;
    };
    let plan = Plan {
        tasks: Task::ALL.to_vec(),
        lengths: vec![1024, 4096, 16384],
        samples: 6,
        seed: 0,
    };
    let all = generate_all(&plan, tok, Some(kjv)).unwrap();
    assert_eq!(all.len(), 4 * 3 * 6);
    for inst in &all {
        assert_valid(inst, tok);
    }
    // Longer prompts hold more haystack.
    for task in Task::ALL {
        let units = |l: usize| {
            all.iter()
                .filter(|i| i.task == task && i.length == l && i.sample == 0)
                .map(|i| i.haystack_units)
                .next()
                .unwrap()
        };
        assert!(
            units(1024) < units(4096) && units(4096) < units(16384),
            "{task}"
        );
    }
}

#[test]
fn llama3_128k_instances_pass_the_checks() {
    let Some((tok, kjv)) = llama3("llama3_128k_instances_pass_the_checks") else {
        return;
    };
    for task in Task::ALL {
        let inst = generate(task, 131072, 1, 0, tok, Some(kjv)).unwrap();
        assert_valid(&inst, tok);
    }
}

#[test]
fn same_seed_same_instances_and_independent_of_the_plan() {
    let tok = byte_tokenizer();
    let plan = Plan {
        tasks: vec![Task::NiahMultivalue, Task::JsonKv],
        lengths: vec![2048],
        samples: 3,
        seed: 11,
    };
    let a = generate_all(&plan, tok, Some(small_prose())).unwrap();
    let b = generate_all(&plan, tok, Some(small_prose())).unwrap();
    assert_eq!(a, b);
    assert_eq!(to_jsonl(&a).unwrap(), to_jsonl(&b).unwrap());
    // One instance alone is the one the plan made.
    let alone = generate(Task::JsonKv, 2048, 2, 11, tok, None).unwrap();
    assert_eq!(alone, a[5]);
    // Another seed, other instances.
    let other = generate(Task::JsonKv, 2048, 2, 12, tok, None).unwrap();
    assert_ne!(other.input, alone.input);
    assert_ne!(other.answers, alone.answers);
    // Samples differ.
    assert_ne!(a[0].answers, a[1].answers);
}

#[test]
fn too_short_lengths_and_missing_prose_are_errors() {
    let tok = byte_tokenizer();
    for task in Task::ALL {
        let err = generate(task, 200, 0, 0, tok, Some(small_prose())).unwrap_err();
        assert_eq!((err.task, err.length), (task, 200));
        match err.source {
            FitError::TooShort {
                length,
                skeleton,
                budget,
            } => {
                assert_eq!((length, budget), (200, task.max_new_tokens()));
                assert!(skeleton + budget > 200, "{task}: {skeleton}");
            }
            e => panic!("{task}: {e}"),
        }
    }
    let err = generate(Task::NiahMultivalue, 4096, 0, 0, tok, None).unwrap_err();
    assert!(matches!(err.source, FitError::NoProse), "{err}");
    // A plan reports the first failing instance in plan order.
    let plan = Plan {
        tasks: vec![Task::NiahMultikey2],
        lengths: vec![4096, 100],
        samples: 2,
        seed: 0,
    };
    let err = generate_all(&plan, tok, None).unwrap_err();
    assert_eq!((err.length, err.sample), (100, 0));
}

// ---------------------------------------------------------------------------
// HELMET's protocol (issue 16).

/// The RULER needles (key, value) of a multi-key prompt's context lines.
fn needle_keys(input: &str) -> Vec<String> {
    input
        .lines()
        .filter_map(|l| l.strip_prefix("One of the special magic numbers for "))
        .map(|rest| rest.split_once(" is: ").unwrap().0.to_owned())
        .collect()
}

#[test]
fn helmet_protocol_sizes_prompts_as_helmets_files() {
    let tok = byte_tokenizer();
    let json = byte_tokenizer_json();
    let model = ModelText::new(tok, json.as_bytes()).unwrap();
    // The byte tokenizer's post-processor adds nothing (no BOS).
    assert!(model.prefix.is_empty() && model.suffix.is_empty());
    let plan = Plan {
        tasks: Task::ALL.to_vec(),
        lengths: vec![4096],
        samples: 3,
        seed: 5,
    };
    let src = HelmetSources {
        sizing: tok,
        prose: Some(small_prose()),
        words: WordLists::builtin(),
        mv: MvTemplate::Head,
    };
    let all = generate_helmet_all(&plan, &src, &model).unwrap();
    assert_eq!(all.len(), 4 * 3);
    assert_eq!(all, generate_helmet_all(&plan, &src, &model).unwrap());
    for inst in &all {
        let what = format!("{} sample {}", inst.task, inst.sample);
        check_helmet_instance(inst, &model, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(inst.protocol, Protocol::Helmet);
        let tokens = tok.encode(&inst.input).unwrap().len();
        assert_eq!(inst.prompt_tokens, tokens, "{what}: no BOS");
        if inst.task != Task::JsonKv {
            assert_eq!(inst.truncated_tokens, 0, "{what}");
            // RULER: sized in the sizing tokenizer to L − 128 (and filled).
            assert!(
                tokens + 128 <= 4096 && 10 * (tokens + 128) >= 9 * 4096,
                "{what}: {tokens}"
            );
            continue;
        }
        // HELMET's k for 4K: 50 records, json.dumps(indent=4), bare keys below. 50
        // records are ~4,300 bytes, so the byte tokenizer's prompt is cut to L − 100
        // (its tokens never straddle the cut).
        let made = helmet_item(Task::JsonKv, 4096, inst.sample, 5, &src).unwrap();
        let context = &made.item.context;
        assert_eq!(context.matches("\": \"").count(), 50, "{what}");
        assert_eq!(made.units, 47);
        assert!(inst.truncated_tokens > 0 && tokens == 4096 - 100, "{what}");
        let kept = &inst.input[..inst.input.find("\n\nExtract the value").unwrap()];
        assert!(context.starts_with(kept) && kept.len() < context.len());
        assert!(context.starts_with("JSON data:\n{\n    \""), "{what}");
        assert!(context.ends_with("\"\n}"), "{what}");
        let [(k1, v1), (k2, v2)] = &made.item.demos[..] else {
            panic!("{what}: two demos")
        };
        assert!(inst.input.ends_with(&format!(
            "\n\nExtract the value corresponding to the specified key in the JSON object below.\n\nKey: {k1}\nCorresponding value: {v1}\n\nKey: {k2}\nCorresponding value: {v2}\n\nKey: {}\nCorresponding value:",
            inst.query
        )));
        let gold = format!("    \"{}\": \"{}\"", inst.query, inst.answers[0]);
        assert_eq!(context.matches(&gold).count(), 1, "{what}");
        for (k, v) in &made.item.demos {
            assert_eq!(context.matches(&format!("    \"{k}\": \"{v}\"")).count(), 1);
        }
    }
    // The multi-value prompt is HEAD's plural one; the paper's wording is singular
    // with the plural noun.
    let mv = |mv| {
        let src = HelmetSources {
            mv,
            ..src_with(tok)
        };
        helmet_item(Task::NiahMultivalue, 4096, 0, 5, &src).unwrap()
    };
    let head = mv(MvTemplate::Head);
    assert!(
        all[9]
            .input
            .starts_with("Some special magic numbers are hidden")
    );
    assert_eq!(
        head.item.render(&head.item.context, MvTemplate::Head),
        all[9].input
    );
    let paper = mv(MvTemplate::Paper);
    let text = paper.item.render(&paper.item.context, MvTemplate::Paper);
    assert!(text.starts_with("A special magic numbers is hidden within the following text. Make sure to memorize it. I will quiz you about the numbers afterwards.\n"));
    let q = &paper.item.query;
    assert!(text.ends_with(&format!(
        "\nWhat is the special magic numbers for {q} mentioned in the provided text?\nThe special magic numbers for {q} mentioned in the provided text is"
    )));
    assert_eq!(
        paper.item.answer_prefix(MvTemplate::Paper),
        format!(
            "The special magic numbers for {} mentioned in the provided text is",
            paper.item.query
        )
    );

    // HELMET has JSON KV files for 4K … 128K only.
    let err = helmet_item(Task::JsonKv, 2048, 0, 0, &src).err().unwrap();
    assert!(
        matches!(err.source, FitError::NoHelmetSize { length: 2048 }),
        "{err}"
    );
}

/// Units of ten bytes that claim one token each: a gross underestimate, as a
/// SentencePiece tokenizer's per-unit counts can be.
struct Underestimated {
    renders: std::cell::Cell<usize>,
}

impl Haystack for Underestimated {
    fn unit_tokens(&mut self, _: &Tokenizer, _: usize) -> Result<usize, FitError> {
        Ok(1)
    }
    fn render(&self, n: usize) -> String {
        self.renders.set(self.renders.get() + 1);
        format!("Q?{}", "0123456789".repeat(n))
    }
}

#[test]
fn fit_bisects_when_the_estimate_is_far_off() {
    let tok = byte_tokenizer();
    let mut h = Underestimated {
        renders: std::cell::Cell::new(0),
    };
    let fitted = fit(tok, &mut h, 4096, 100).unwrap();
    // BOS + "Q?" + 10 per unit ≤ 3996: 399 units.
    assert_eq!((fitted.units, fitted.prompt_tokens), (399, 3993));
    // Eight trims, then a bisection: not the ~3,500 renders of trimming one at a time.
    assert!(h.renders.get() < 40, "{}", h.renders.get());
}

fn src_with(tok: &'static Tokenizer) -> HelmetSources<'static> {
    HelmetSources {
        sizing: tok,
        prose: Some(small_prose()),
        words: WordLists::builtin(),
        mv: MvTemplate::Head,
    }
}

/// The byte tokenizer with a post-processor that puts BOS before and EOS after the text.
fn bos_eos_tokenizer_json() -> serde_json::Value {
    let mut json: serde_json::Value = serde_json::from_str(&byte_tokenizer_json()).unwrap();
    let special =
        |name: &str, id: u32| serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
    json["post_processor"] = serde_json::json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<|end_of_text|>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|begin_of_text|>": special("<|begin_of_text|>", BOS),
                           "<|end_of_text|>": special("<|end_of_text|>", EOS)}
    });
    json
}

#[test]
fn helmet_special_tokens_are_the_post_processors() {
    let json = bos_eos_tokenizer_json();
    let bytes = json.to_string().into_bytes();
    let tok = Tokenizer::from_bytes(&bytes).unwrap();
    let model = ModelText::new(&tok, &bytes).unwrap();
    assert_eq!(
        (model.prefix.clone(), model.suffix.clone()),
        (vec![BOS], vec![EOS])
    );
    // Llama-class tokenizers: tokenizer_config.json's add_bos_token (default true) and
    // add_eos_token (default false) replace the post-processor, as HF rebuilds it;
    // other classes keep it.
    let with_config = |config: serde_json::Value| {
        let mut m = ModelText::new(&tok, &bytes).unwrap();
        m.apply_tokenizer_config(&config)
            .map(|()| (m.prefix, m.suffix))
    };
    let bos = serde_json::json!({"content": "<|begin_of_text|>"});
    assert_eq!(
        with_config(serde_json::json!({"tokenizer_class": "LlamaTokenizerFast", "bos_token": bos}))
            .unwrap(),
        (vec![BOS], vec![])
    );
    assert_eq!(
        with_config(serde_json::json!({"tokenizer_class": "LlamaTokenizer",
            "add_bos_token": false, "add_eos_token": true, "eos_token": "<|end_of_text|>"}))
        .unwrap(),
        (vec![], vec![EOS])
    );
    assert_eq!(
        with_config(
            serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast",
            "add_bos_token": false})
        )
        .unwrap(),
        (vec![BOS], vec![EOS])
    );
    let err = with_config(serde_json::json!({"tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>"}))
    .unwrap_err();
    assert!(err.to_string().contains("bos_token Some(\"<s>\")"), "{err}");

    let ids = model.ids("the key").unwrap();
    assert_eq!(ids.first(), Some(&BOS));
    assert_eq!(ids.last(), Some(&EOS));
    assert_eq!(model.count("the key").unwrap(), ids.len());

    // Truncation counts them too: a context of 100 'x' in a prompt 20 over the limit
    // is cut by 20 tokens, and the cut prompt fits exactly.
    let item = HelmetItem {
        task: Task::NiahMultikey2,
        context: "x".repeat(100),
        query: "a-b".into(),
        type_needle_v: "number".into(),
        demos: Vec::new(),
        answers: vec!["1".into()],
    };
    let full = model
        .count(&item.render(&item.context, MvTemplate::Head))
        .unwrap();
    let length = full - 20 + 50;
    let p = model.truncate(&item, MvTemplate::Head, length, 50).unwrap();
    // HELMET counts the cut from the end of `tokenizer(context)`, EOS included: one
    // context token fewer is cut than the prompt is over (81 'x' kept, not 80).
    assert_eq!((p.truncated, p.tokens), (20, full - 19));
    assert_eq!(p.prompt, item.render(&"x".repeat(81), MvTemplate::Head));
    // More to cut than the context has: an error, not a panic.
    let err = model
        .truncate(&item, MvTemplate::Head, full - 200 + 50, 50)
        .unwrap_err();
    assert!(err.to_string().contains("more than the context"), "{err}");
}

#[test]
fn helmet_llama2_sizing_and_wonderwords_keys() {
    let test = "helmet_llama2_sizing_and_wonderwords_keys";
    let (Some((tok, kjv)), Some(l2), Some(words)) = (
        llama3(test),
        fixture("llama2-tokenizer.json", test),
        fixture("wonderwords", test),
    ) else {
        return;
    };
    let llama2 = Tokenizer::from_file(&l2).unwrap();
    let json = std::fs::read(fixture("tokenizer.json", test).unwrap()).unwrap();
    let model = ModelText::new(tok, &json).unwrap();
    let words = WordLists::from_dir(&words).unwrap();
    // 912 lines, of which "nasty ", "blue-eyed " and "wet " repeat a word once
    // trimmed: RULER's set of pairs has the same 910 adjectives.
    assert_eq!(words.sizes(), (910, 6782));
    let src = HelmetSources {
        sizing: &llama2,
        prose: Some(kjv),
        words,
        mv: MvTemplate::Paper,
    };
    let plan = Plan {
        tasks: Task::ALL.to_vec(),
        lengths: vec![8192],
        samples: 1,
        seed: 0,
    };
    let all = generate_helmet_all(&plan, &src, &model).unwrap();
    let adjectives =
        std::fs::read_to_string(fixture("wonderwords/adjectivelist.txt", test).unwrap()).unwrap();
    for inst in &all {
        check_helmet_instance(inst, &model, true).unwrap();
        let llama2_tokens = llama2.encode(&inst.input).unwrap().len();
        match inst.task {
            Task::JsonKv => assert_eq!(inst.input.matches("\": \"").count(), 105),
            _ => assert!(
                llama2_tokens + 128 <= 8192 && 10 * (llama2_tokens + 128) >= 9 * 8192,
                "{}: {llama2_tokens}",
                inst.task
            ),
        }
        // Llama-3 needs fewer tokens for the same text.
        assert!(inst.prompt_tokens < llama2_tokens, "{}", inst.task);
        if inst.task == Task::NiahMultikey2 {
            let keys = needle_keys(&inst.input);
            assert!(keys.len() > 100);
            for key in keys {
                assert!(
                    adjectives
                        .lines()
                        .any(|a| key.starts_with(&format!("{}-", a.trim()))),
                    "{key}"
                );
            }
        }
    }
}

#[test]
fn checks_catch_broken_instances() {
    let tok = byte_tokenizer();
    let good = generate(Task::NiahMultikey2, 2048, 0, 3, tok, None).unwrap();
    check_instance(&good, tok).unwrap();

    let mut twice = good.clone();
    twice.input.push_str(&format!(" {}", good.answers[0]));
    assert!(matches!(
        check_answers(&twice),
        Err(CheckError::AnswerCount { count: 2, .. })
    ));
    let mut missing = good.clone();
    missing.answers = vec!["7777777x".into()];
    assert!(matches!(
        check_answers(&missing),
        Err(CheckError::AnswerCount { count: 0, .. })
    ));

    let mut over = good.clone();
    over.prompt_tokens = over.length - over.max_new_tokens + 1;
    assert!(matches!(
        check_budget(&over),
        Err(CheckError::OverLength { .. })
    ));
    let mut under = good.clone();
    under.prompt_tokens = (under.length * 9).div_ceil(10) - under.max_new_tokens - 1;
    assert!(matches!(
        check_budget(&under),
        Err(CheckError::Underfilled { .. })
    ));
    under.prompt_tokens += 1;
    check_budget(&under).unwrap();

    let mut miscounted = good.clone();
    miscounted.prompt_tokens -= 1;
    assert!(matches!(
        check_instance(&miscounted, tok),
        Err(CheckError::TokenCount { .. })
    ));
}

// ---------------------------------------------------------------------------
// Scorers.

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn spec_scorer_examples() {
    let answers = strings(&["1234567", "7654321", "1111111", "2222222"]);
    assert_eq!(
        score(Task::NiahMultivalue, "... are 1234567, 7654321", &answers),
        0.5
    );
    assert_eq!(
        score(
            Task::JsonKv,
            "Corresponding value: 3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            &strings(&["3f2504e0-4f89-41d3-9a0c-0305e82c3301"])
        ),
        1.0
    );
}

#[test]
fn ruler_scorer_partial_credit_and_case() {
    let answers = strings(&["1234567", "7654321", "1111111"]);
    assert_eq!(ruler_recall(" 1234567.", &answers), 1.0 / 3.0);
    assert_eq!(ruler_recall("7654321 1111111 1234567", &answers), 1.0);
    assert_eq!(ruler_recall("123456 7", &answers), 0.0);
    // Case-insensitive both ways.
    let uuid = strings(&["3f2504e0-4f89-41d3-9a0c-0305e82c3301"]);
    assert_eq!(
        score(
            Task::NiahMultikey3,
            "is 3F2504E0-4F89-41D3-9A0C-0305E82C3301.",
            &uuid
        ),
        1.0
    );
    // A broken UUID is no match.
    assert_eq!(
        score(
            Task::NiahMultikey3,
            "3f2504e0 4f89-41d3-9a0c-0305e82c3301",
            &uuid
        ),
        0.0
    );
    assert_eq!(ruler_recall("anything", &[]), 0.0);
}

#[test]
fn json_kv_normalisation() {
    assert_eq!(
        normalize("  The Answer, is: AN apple!\n\tA-b_c "),
        "answer is apple abc"
    );
    // Articles only as whole words.
    assert_eq!(normalize("theme anatomy a1 athe"), "theme anatomy a1 athe");
    // Punctuation goes first, so "the." is still an article; non-ASCII stays.
    assert_eq!(normalize("the. thé—the"), "thé—");
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    // Hyphens are punctuation on both sides.
    assert_eq!(json_kv_match("3f2504e04f8941d39a0c0305e82c3301", gold), 1.0);
    // Quotes around the value are punctuation.
    assert_eq!(
        json_kv_match("\"3f2504e0-4f89-41d3-9a0c-0305e82c3301\"", gold),
        1.0
    );
    assert_eq!(
        json_kv_match("3f2504e0-4f89-41d3-9a0c-0305e82c330", gold),
        0.0
    );
    // The article "a" between words is replaced, joining what it separated with a space.
    assert_eq!(json_kv_match("value a b", "value b"), 1.0);
    assert_eq!(json_kv_match("value ab", "value b"), 0.0);
}

#[test]
fn json_kv_reads_the_raw_output_and_the_prefixed_line() {
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    // The prefix in any case, the value after it on its line.
    assert_eq!(
        json_kv_match(
            "CORRESPONDING VALUE: 3f2504e0-4f89-41d3-9a0c-0305e82c3301\nKey:",
            gold
        ),
        1.0
    );
    // No prefix, the value further down the raw output.
    assert_eq!(
        json_kv_match(
            "I think\nit is \"3f2504e0-4f89-41d3-9a0c-0305e82c3301\".",
            gold
        ),
        1.0
    );
    // Another record's value, or the key, scores 0.
    assert_eq!(
        json_kv_match(
            "Corresponding value: 9f2504e0-4f89-41d3-9a0c-0305e82c3301",
            gold
        ),
        0.0
    );
    assert_eq!(json_kv_match("", gold), 0.0);
    // Spaces inside the value break it (whitespace is kept as one space).
    assert_eq!(
        json_kv_match("3f2504e0 4f89 41d3 9a0c 0305e82c3301", gold),
        0.0
    );
}

// ---------------------------------------------------------------------------
// Instances as JSONL.

#[test]
fn instances_round_trip_and_match_the_schema() {
    let tok = byte_tokenizer();
    let insts = vec![
        generate(Task::JsonKv, 1024, 0, 1, tok, None).unwrap(),
        generate(Task::NiahMultivalue, 1024, 0, 1, tok, Some(small_prose())).unwrap(),
    ];
    let bytes = to_jsonl(&insts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("instances.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_jsonl(&path).unwrap(), insts);

    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../schemas/recall-instance.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let required: HashSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let properties: HashSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for line in String::from_utf8(bytes).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: HashSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, required, "every field is required and documented");
        // Fill instances have every required field and no other; HELMET-protocol ones
        // add `protocol` (and `truncated_tokens` when cut).
        assert_eq!(
            properties
                .difference(&keys)
                .copied()
                .collect::<HashSet<_>>(),
            HashSet::from(["protocol", "truncated_tokens"])
        );
        let task = v["task"].as_str().unwrap();
        let names: Vec<&str> = schema["properties"]["task"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(names.contains(&task), "{task}");
    }

    std::fs::write(&path, b"{\"task\": \"json_kv\"}\n").unwrap();
    let err = read_jsonl(&path).unwrap_err().to_string();
    assert!(err.contains("instances.jsonl:1:"), "{err}");
}

// ---------------------------------------------------------------------------
// Table, recall.json, SVG.

fn scored(task: Task, length: usize, sample: usize, score: f64) -> Scored {
    Scored {
        task,
        length,
        sample,
        answers: vec!["1".into()],
        depths: vec![0.5],
        prompt_tokens: length - 100,
        prediction: "p".into(),
        generated_tokens: 3,
        score,
    }
}

#[test]
fn table_means_and_text() {
    let tasks = [Task::JsonKv, Task::NiahMultivalue];
    let lengths = [1024, 8192];
    let s = vec![
        scored(Task::JsonKv, 1024, 0, 1.0),
        scored(Task::JsonKv, 1024, 1, 0.0),
        scored(Task::JsonKv, 8192, 0, 1.0),
        scored(Task::NiahMultivalue, 1024, 0, 0.25),
        scored(Task::NiahMultivalue, 8192, 0, 0.75),
        scored(Task::NiahMultivalue, 8192, 1, 0.25),
        // Not asked for: left out.
        scored(Task::NiahMultikey2, 1024, 0, 1.0),
    ];
    let t = Table::new(&tasks, &lengths, &s);
    assert_eq!(t.cells, vec![vec![50.0, 100.0], vec![25.0, 50.0]]);
    assert_eq!(t.recall, vec![37.5, 75.0]);
    let text = t.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].split_whitespace().eq(["task", "1K", "8K"]));
    assert!(lines[1].split_whitespace().eq(["json_kv", "50.0", "100.0"]));
    assert!(lines[3].split_whitespace().eq(["Recall", "37.5", "75.0"]));

    let report = RecallReport {
        model: "m".into(),
        protocol: "fill".into(),
        mv_template: "head".into(),
        seed: 0,
        samples: 2,
        table: t.clone(),
        instances: s,
    };
    let json = serde_json::to_string(&report).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["table"]["tasks"],
        serde_json::json!(["json_kv", "niah_multivalue"])
    );
    assert_eq!(v["instances"][3]["task"], "niah_multivalue");
    assert_eq!(serde_json::from_str::<RecallReport>(&json).unwrap(), report);
}

#[test]
fn svg_has_a_coloured_cell_with_its_value_per_row_and_length() {
    let tasks = Task::ALL;
    let lengths = [4096, 8192, 16384];
    let s: Vec<Scored> = tasks
        .iter()
        .enumerate()
        .flat_map(|(i, &t)| {
            lengths
                .iter()
                .enumerate()
                .map(move |(j, &l)| scored(t, l, 0, (i * 3 + j) as f64 / 11.0))
        })
        .collect();
    let t = Table::new(&tasks, &lengths, &s);
    let svg = t.svg("Recall <test> & more");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("Recall &lt;test&gt; &amp; more"));
    // Background + one rect per (task or Recall) × length.
    assert_eq!(svg.matches("<rect ").count(), 1 + 5 * 3);
    for (label, scores) in t.rows() {
        assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        for v in scores {
            assert!(svg.contains(&format!(">{v:.1}</text>")), "{label} {v}");
        }
    }
    for l in ["4K", "8K", "16K"] {
        assert!(svg.contains(&format!(">{l}</text>")));
    }
    // Cells of different scores have different colours.
    let fills: HashSet<&str> = svg
        .match_indices("fill=\"rgb(")
        .map(|(i, _)| &svg[i..i + 24])
        .collect();
    assert!(fills.len() >= 12, "{fills:?}");
}

// ---------------------------------------------------------------------------
// Decoding.

#[test]
fn decode_skips_special_tokens_and_replaces_broken_utf8() {
    let tok = byte_tokenizer();
    let ids = tok.encode("the Ünïcode text").unwrap();
    let mut with_special = vec![300];
    with_special.extend(&ids);
    with_special.push(301);
    assert_eq!(tok.decode(&with_special).unwrap(), "the Ünïcode text");
    // "Ü" is two bytes; the first alone is invalid UTF-8.
    assert_eq!(tok.decode(&[b'a' as u32, 0xc3]).unwrap(), "a\u{fffd}");
}

#[test]
fn llama3_decode_matches_the_tokenizers_crate() {
    let Some((tok, kjv)) = llama3("llama3_decode_matches_the_tokenizers_crate") else {
        return;
    };
    let json = std::fs::read(fixture("tokenizer.json", "decode").unwrap()).unwrap();
    let reference = Tokenizer::reference_from_bytes(&json).unwrap();
    let bos = tok.added_token_id("<|begin_of_text|>").unwrap();
    let eot = tok.added_token_id("<|eot_id|>").unwrap();
    let texts = [
        kjv.sentence(100).to_owned(),
        "One of the special magic uuids for 3f2504e0-4f89-41d3 is: 1234567.\n  tabs\tand ünïcode 日本語 🎉".to_owned(),
    ];
    for text in texts {
        let mut ids = vec![bos];
        ids.extend(tok.encode(&text).unwrap());
        ids.push(eot);
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(tok.decode(&ids).unwrap(), reference.decode(&ids).unwrap());
        // Cut inside a multi-byte character: both give U+FFFD the same way.
        let cut = &ids[..ids.len() - 2];
        assert_eq!(tok.decode(cut).unwrap(), reference.decode(cut).unwrap());
    }
}

// ---------------------------------------------------------------------------
// HELMET's own Python against ours (issue 16): its scorers on the same predictions,
// and its truncation (`model_utils.tokenize`) with transformers' fast tokenizer.

/// HELMET's scoring and truncation, written here from HELMET's utils.py, data.py and
/// model_utils.py (normalize_answer, substring_exact_match_score, parse_output, the
/// json_kv and ruler post_process with the system template put back before the
/// output, and tokenize()'s truncation for a model without chat template). Reads
/// {"scores": [[task, prediction, answers, prefix]], "cuts": [[tokenizer.json,
/// template_before, template_after, context, max_length, generation_max_length]]}.
const HELMET_PY: &str = r#"
import json, re, string, sys
from transformers import PreTrainedTokenizerFast

def normalize_answer(s):
    s = s.lower()
    s = ''.join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r'\b(a|an|the)\b', ' ', s)
    return ' '.join(s.split())

def sub_em(prediction, answers):
    return max(normalize_answer(a) in normalize_answer(prediction) for a in answers)

def parse_output(output, prefix):
    def lstrip_string(s, sub):
        return re.sub(f'^{re.escape(sub)}', '', s, flags=re.IGNORECASE)
    patterns = [re.compile(f"(?:{prefix})(.*)(?:\n|$)", flags=re.IGNORECASE), re.compile(r"(?:^)(.*)(?:\n|$)")]
    for pat in patterns:
        m = pat.search(output)
        if m is not None:
            return lstrip_string(m[1].strip(), prefix).strip()
    return None

def score(task, prediction, answers, prefix):
    output = prefix + prediction
    if task == "json_kv":
        s = sub_em(output, answers)
        parsed = parse_output(output, "corresponding value:")
        return float(max(s, sub_em(parsed, answers)))
    return sum(a.lower() in output.lower() for a in answers) / len(answers)

TOKS = {}

def cut(tok_file, before, after, context, max_length, gen):
    if tok_file not in TOKS:
        TOKS[tok_file] = PreTrainedTokenizerFast(tokenizer_file=tok_file)
    tok = TOKS[tok_file]
    fmt = lambda c: before + c + after
    n = len(tok([fmt(context)])["input_ids"][0])
    if n > max_length - gen:
        t = n - (max_length - gen)
        offsets = tok([context], return_offsets_mapping=True)["offset_mapping"][0]
        context = context[:offsets[-t][0]]
    return fmt(context)

# datasets' shuffle(seed=42): numpy's default_rng(42).permutation(n).
import numpy as np
req = json.load(sys.stdin)
print(json.dumps({"scores": [score(*c) for c in req["scores"]],
                  "cuts": [cut(*c) for c in req["cuts"]],
                  "perms": [np.random.default_rng(42).permutation(n).tolist() for n in req["perms"]]}))
"#;

#[test]
fn scores_and_truncation_equal_helmets_python() {
    let test = "scores_and_truncation_equal_helmets_python";
    let importable = std::process::Command::new("python3")
        .args(["-c", "import transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        eprintln!(
            "skipped {test}: python3 cannot import transformers (scripts/install-python-peers.sh)"
        );
        return;
    }
    let gold = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    let kv_cases = [
        format!(" {gold}\nKey: x"),
        format!("CORRESPONDING VALUE: {gold}"),
        format!(" the value is \"{gold}\"."),
        " 3f2504e0 4f89 41d3 9a0c 0305e82c3301".into(),
        format!("\n\n{gold}"),
        format!(" corresponding value: Corresponding value:  {gold} \nmore"),
        format!(" {}", gold.to_uppercase()),
        " 9f2504e0-4f89-41d3-9a0c-0305e82c3301".into(),
        String::new(),
        format!(" An{gold}"),
        format!(" \u{1f}{gold}\u{a0}"),
    ];
    let answers = vec![
        "1234567".to_owned(),
        "7654321".to_owned(),
        "1111111".to_owned(),
    ];
    let ruler_cases = [
        " 1234567, 7654321 and 1111111.",
        " 1234567 and 765432.",
        " none",
        "1111111",
    ];
    let mut scores = Vec::new();
    for p in &kv_cases {
        scores.push((
            Task::JsonKv,
            p.clone(),
            vec![gold.to_owned()],
            "Corresponding value:".to_owned(),
        ));
    }
    for p in ruler_cases {
        scores.push((
            Task::NiahMultivalue,
            p.to_owned(),
            answers.clone(),
            "The special magic numbers for a-b mentioned in the provided text are".to_owned(),
        ));
    }

    // Truncation: the byte tokenizer with a post-processor adding BOS and EOS, and the
    // Llama-3 tokenizer when the fixture is there, on a context with multi-byte text.
    let dir = tempfile::tempdir().unwrap();
    let json = bos_eos_tokenizer_json();
    let byte_path = dir.path().join("byte.json");
    std::fs::write(&byte_path, json.to_string()).unwrap();
    let mut tokenizers = vec![byte_path];
    tokenizers.extend(fixture("tokenizer.json", test));
    let context: String = (0..200)
        .map(|i| {
            format!(
                "One of the special magic numbers for k-{i} is: {}. Né café “quoted”. ",
                1_000_000 + i
            )
        })
        .collect();
    let item = HelmetItem {
        task: Task::NiahMultikey2,
        context,
        query: "k-7".into(),
        type_needle_v: "number".into(),
        demos: Vec::new(),
        answers: vec!["1000007".into()],
    };
    let mv = MvTemplate::Head;
    let marker = "\u{0}CONTEXT\u{0}";
    let template = item.render(marker, mv);
    let (before, after) = template.split_once(marker).unwrap();
    let mut cuts = Vec::new();
    let mut ours = Vec::new();
    for path in &tokenizers {
        let bytes = std::fs::read(path).unwrap();
        let tok = Tokenizer::from_bytes(&bytes).unwrap();
        let model = ModelText::new(&tok, &bytes).unwrap();
        for length in [700, 1500, 3000, 20000] {
            let p = model.truncate(&item, mv, length, 50).unwrap();
            cuts.push(serde_json::json!([
                path,
                before,
                after,
                item.context,
                length,
                50
            ]));
            ours.push(p.prompt);
        }
    }
    let request = serde_json::json!({
        "scores": scores.iter().map(|(t, p, a, pre)| serde_json::json!([t.name(), p, a, pre])).collect::<Vec<_>>(),
        "cuts": cuts,
        "perms": [1, 2, 100, 600, 1000, 70_000],
    });
    let mut child = std::process::Command::new("python3")
        .args(["-c", HELMET_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for ((task, p, a, _), want) in scores.iter().zip(theirs["scores"].as_array().unwrap()) {
        assert_eq!(score(*task, p, a), want.as_f64().unwrap(), "{task} {p:?}");
    }
    let want: Vec<String> = serde_json::from_value(theirs["cuts"].clone()).unwrap();
    assert_eq!(ours.len(), want.len());
    for (i, (o, w)) in ours.iter().zip(&want).enumerate() {
        assert!(
            o == w,
            "cut {i}: ours {} bytes, HELMET's {}",
            o.len(),
            w.len()
        );
    }
    for perm in theirs["perms"].as_array().unwrap() {
        let perm: Vec<usize> = serde_json::from_value(perm.clone()).unwrap();
        assert_eq!(helmet_selection(perm.len(), perm.len()), perm);
    }
    // Some of them were cut, and some not.
    assert!(
        ours.iter()
            .any(|o| o.len() < item.render(&item.context, mv).len())
    );
    assert!(ours.iter().any(|o| *o == item.render(&item.context, mv)));
}

/// A prose's cached sentence counts belong to the tokenizer that counted them: the
/// same `Prose` asked with a tokenizer that merges words into fewer tokens gives
/// that tokenizer's counts, not the first one's (the multi-value haystack of one
/// process is a static shared by every run, whatever its tokenizer).
#[test]
fn prose_counts_are_per_tokenizer() {
    let prose = prolong_eval::recall::Prose::from_text(SMALL_PROSE, "small prose").unwrap();
    let bytes = byte_tokenizer();
    let merged = {
        // The byte tokenizer's vocabulary and merges plus "Ġ i" → "Ġi", "Ġi t" → "Ġit".
        let base: serde_json::Value = serde_json::from_str(&byte_tokenizer_json()).unwrap();
        let mut vocab = base["model"]["vocab"].as_object().unwrap().clone();
        let next = vocab.len() as u64;
        vocab.insert("Ġi".into(), next.into());
        vocab.insert("Ġit".into(), (next + 1).into());
        let mut merges: Vec<(String, String)> = base["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let (a, b) = m.as_str().unwrap().split_once(' ').unwrap();
                (a.to_owned(), b.to_owned())
            })
            .collect();
        merges.push(("Ġ".into(), "i".into()));
        merges.push(("Ġi".into(), "t".into()));
        let json = bpe_tokenizer_json(vocab, &merges, (BOS, EOS), base["pre_tokenizer"].clone());
        Tokenizer::from_bytes(json.as_bytes()).unwrap()
    };
    // A sentence with the word "it" in it: fewer tokens with the merges.
    let i = (0..prose.len())
        .find(|&i| prose.sentence(i).contains(" it"))
        .unwrap();
    let by_bytes = prose.tokens(bytes, i).unwrap();
    let by_merged = prose.tokens(&merged, i).unwrap();
    assert_eq!(
        by_bytes,
        bytes
            .encode(&format!(" {}", prose.sentence(i)))
            .unwrap()
            .len()
    );
    assert_eq!(
        by_merged,
        merged
            .encode(&format!(" {}", prose.sentence(i)))
            .unwrap()
            .len()
    );
    assert!(by_merged < by_bytes, "{by_merged} vs {by_bytes}");
    // And the first tokenizer still gets its own.
    assert_eq!(prose.tokens(bytes, i).unwrap(), by_bytes);
}
