//! Recall instances: generation, every check, fixed seeds, errors for
//! lengths too short, and prose counts kept per tokenizer.

use super::*;

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
