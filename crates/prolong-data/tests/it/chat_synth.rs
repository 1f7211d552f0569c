//! chat-synth: the same seed gives the same bytes, and every answer is
//! recomputed here from the passage its conversation quotes.

use crate::common;

use std::path::{Path, PathBuf};

use prolong_data::chat::synth::{Text, load_texts, render, synthesize};
use prolong_data::chat::{Message, Role};

/// A text with repeated lines and phrases (so uniqueness matters), and the
/// fixtures' texts when they are there.
fn texts(dir: &Path) -> Vec<Text> {
    let generated: String = (0..400)
        .map(|i| match i % 9 {
            0 => "And it was so.\n".to_string(),
            4 => "\n".to_string(),
            _ => format!(
                "  Line {i}: the {} went {} to the {}.\n",
                ["cat", "dog", "fox"][i % 3],
                ["up", "down"][i % 2],
                ["hill", "river", "town", "sea"][i % 4]
            ),
        })
        .collect();
    std::fs::write(dir.join("generated.txt"), generated).unwrap();
    let mut inputs = vec![dir.join("generated.txt")];
    for rel in ["kjv.txt", "gutenberg"] {
        if let Some(p) = common::fixture(rel, "chat_synth texts") {
            inputs.push(p);
        }
    }
    load_texts(&inputs).unwrap()
}

fn parse(line: &str) -> Vec<Message> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    serde_json::from_value(v["messages"].clone()).unwrap()
}

/// The answer to `question` about `passage`, from the question's wording.
fn expected_answer(passage: &str, question: &str) -> String {
    let lines: Vec<&str> = passage.split('\n').collect();
    let words: Vec<&str> = passage.split_whitespace().collect();
    let between = |q: &str, pre: &str, post: &str| -> Option<String> {
        Some(q.strip_prefix(pre)?.strip_suffix(post)?.to_string())
    };
    if let Some(line) = between(question, "Which line comes right after the line \"", "\"?") {
        let at: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == line).collect();
        assert_eq!(at.len(), 1, "the quoted line occurs once: {line:?}");
        return lines[at[0] + 1].to_string();
    }
    if let Some(phrase) = between(
        question,
        "Which word comes right after \"",
        "\" in the passage?",
    ) {
        let phrase: Vec<&str> = phrase.split(' ').collect();
        let at: Vec<usize> = (0..words.len() - phrase.len())
            .filter(|&i| words[i..i + phrase.len()] == phrase[..])
            .collect();
        assert_eq!(at.len(), 1, "the phrase occurs once: {phrase:?}");
        return words[at[0] + phrase.len()].to_string();
    }
    if let Some(n) = between(question, "Repeat line ", " of the passage exactly.") {
        return lines[n.parse::<usize>().unwrap() - 1].to_string();
    }
    if question == "What is the first line of the passage?" {
        return lines[0].to_string();
    }
    if question == "What is the last line of the passage?" {
        return lines[lines.len() - 1].to_string();
    }
    if let Some(word) = between(
        question,
        "How many times does the word \"",
        "\" occur in the passage? Count whole words, ignoring case and surrounding punctuation.",
    ) {
        let bare = |w: &str| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        };
        let n = words.iter().filter(|w| bare(w) == word).count();
        assert!(n >= 1);
        return n.to_string();
    }
    panic!("unknown question {question:?}");
}

#[test]
fn every_answer_is_recomputed_from_its_passage() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = texts(tmp.path());
    let (jsonl, stats) = render(&texts, 300, 7);
    let text = String::from_utf8(jsonl).unwrap();
    let mut asked = 0;
    for line in text.lines() {
        let messages = parse(line);
        let turns: Vec<&Message> = messages.iter().filter(|m| m.role != Role::System).collect();
        assert!(turns.len() >= 2 && turns.len().is_multiple_of(2));
        let first = turns[0]
            .content
            .strip_prefix("Read this passage:\n\n")
            .unwrap();
        let (passage, _) = first.rsplit_once("\n\n").unwrap();
        assert!(
            passage.len() >= 1_000 || passage.lines().count() >= 4,
            "{passage:?}"
        );
        for pair in turns.chunks(2) {
            assert_eq!((pair[0].role, pair[1].role), (Role::User, Role::Assistant));
            let question = pair[0]
                .content
                .rsplit_once("\n\n")
                .map_or(pair[0].content.as_str(), |(_, q)| q);
            assert_eq!(
                pair[1].content,
                expected_answer(passage, question),
                "{question}"
            );
            asked += 1;
        }
    }
    assert_eq!(stats.conversations, 300);
    assert_eq!(stats.questions.values().sum::<u64>(), asked);
    assert_eq!(
        stats.questions.len(),
        6,
        "every kind asked: {:?}",
        stats.questions
    );
}

#[test]
fn a_seed_gives_the_same_bytes_and_conversation_i_whatever_the_count() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = texts(tmp.path());
    let out = |name: &str| -> PathBuf { tmp.path().join(name) };
    let (changed, _) = synthesize(&texts, 60, 3, &out("a.jsonl")).unwrap();
    assert!(changed);
    let (changed, _) = synthesize(&texts, 60, 3, &out("a.jsonl")).unwrap();
    assert!(!changed, "an identical file is left alone");
    synthesize(&texts, 60, 3, &out("b.jsonl.zst")).unwrap();
    let a = std::fs::read(out("a.jsonl")).unwrap();
    let b = zstd::decode_all(std::fs::read(out("b.jsonl.zst")).unwrap().as_slice()).unwrap();
    assert_eq!(a, b);
    synthesize(&texts, 60, 3, &out("c.jsonl.zst")).unwrap();
    assert_eq!(
        std::fs::read(out("b.jsonl.zst")).unwrap(),
        std::fs::read(out("c.jsonl.zst")).unwrap()
    );

    let (other_seed, _) = render(&texts, 60, 4);
    assert_ne!(a, other_seed);
    let (more, _) = render(&texts, 90, 3);
    assert!(
        more.starts_with(&a),
        "conversation i does not depend on the count"
    );

    // Through the binary, then the chat stage takes every conversation.
    let bin = env!("CARGO_BIN_EXE_prolong-data");
    common::succeeded(
        std::process::Command::new(bin)
            .args([
                "chat-synth",
                "--conversations",
                "60",
                "--seed",
                "3",
                "--texts",
            ])
            .arg(tmp.path().join("generated.txt"))
            .arg("--out")
            .arg(out("cli.jsonl"))
            .output()
            .unwrap(),
    );
    let only_generated = load_texts(&[tmp.path().join("generated.txt")]).unwrap();
    assert_eq!(
        std::fs::read(out("cli.jsonl")).unwrap(),
        render(&only_generated, 60, 3).0
    );
    common::write_byte_tokenizer(tmp.path());
    std::fs::write(
        tmp.path().join("tokenizer.json"),
        common::chat_tokenizer_json(),
    )
    .unwrap();
    let chat = common::succeeded(
        std::process::Command::new(bin)
            .arg("chat")
            .arg(out("b.jsonl.zst"))
            .arg("--out")
            .arg(out("tok"))
            .arg("--tokenizer")
            .arg(tmp.path().join("tokenizer.json"))
            .arg("--json")
            .output()
            .unwrap(),
    );
    let stats: serde_json::Value = serde_json::from_slice(&chat.stdout).unwrap();
    assert_eq!(stats["conversations_in"], 60);
    assert_eq!(stats["conversations_out"], 60);
}

#[test]
fn non_text_inputs_and_output_names_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("x.jsonl");
    std::fs::write(&jsonl, "{}\n").unwrap();
    let err = load_texts(&[jsonl]).unwrap_err().to_string();
    assert!(
        err.contains("x.jsonl: chat-synth reads plain texts"),
        "{err}"
    );
    let texts = texts(tmp.path());
    let err = synthesize(&texts, 1, 0, &tmp.path().join("out.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("out.txt: output must end in .jsonl or .jsonl.zst"),
        "{err}"
    );
}
