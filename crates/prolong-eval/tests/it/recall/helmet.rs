//! HELMET's protocol (issue 16): prompt sizing as HELMET's files, fitting,
//! special tokens from the post-processor, Llama-2 sizing, broken instances.

use super::*;

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
