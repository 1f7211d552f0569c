//! The table, recall.json and the SVG heat map; decoding.

use super::*;

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
