//! `prolong-eval ppl`: position buckets, sums against `Llama::loss`, the report files.

use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device};
use prolong_eval::ppl::{PositionLosses, PplReport, bucket_edges, bucket_of, evaluate};
use prolong_mds::{Array, MdsWriter, Value, WriterOptions};
use prolong_train::train::init::random_llama;
use prolong_train::{Llama, LlamaConfig, PackedSequence};

const SEQ: usize = 40;

/// Packed sequences of `SEQ` tokens: documents, a gap token and a one-token document.
fn samples() -> Vec<(Vec<u32>, Vec<[usize; 2]>)> {
    (0..3u32)
        .map(|i| {
            let ids = (0..SEQ as u32).map(|t| (t * 7 + i * 13) % 61).collect();
            let cut = 9 + 5 * i as usize;
            (ids, vec![[0, cut], [cut, 30], [31, 32], [32, SEQ]])
        })
        .collect()
}

fn write_dataset(dir: &Path) {
    let columns = [
        ("input_ids", "ndarray:uint32"),
        ("indices", "ndarray:uint32"),
    ];
    let mut w = MdsWriter::create(dir, &columns, WriterOptions::default()).unwrap();
    for (ids, indices) in samples() {
        let flat: Vec<u32> = indices.iter().flatten().map(|&x| x as u32).collect();
        w.write(&[
            ("input_ids", Value::Array(Array::from_u32(&ids))),
            (
                "indices",
                Value::Array(Array::from_u32(&flat).with_shape(vec![indices.len(), 2])),
            ),
        ])
        .unwrap();
    }
    w.finish().unwrap();
}

fn tiny_model(dir: &Path) -> Llama {
    let cfg = LlamaConfig::from_json(
        r#"{"vocab_size": 64, "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rope_theta": 10000.0, "model_type": "llama"}"#,
    )
    .unwrap();
    let model = random_llama(&cfg, 7, 0.3, DType::F32, &Device::Cpu).unwrap();
    model.save(dir).unwrap();
    model
}

#[test]
fn buckets_double_after_the_first_1k_and_end_at_the_sequence_length() {
    let k = 1024;
    assert_eq!(
        bucket_edges(64 * k),
        vec![
            0..k,
            k..2 * k,
            2 * k..4 * k,
            4 * k..8 * k,
            8 * k..16 * k,
            16 * k..32 * k,
            32 * k..64 * k
        ]
    );
    assert_eq!(bucket_edges(3000), vec![0..k, k..2 * k, 2 * k..3000]);
    assert_eq!(bucket_edges(500), vec![0..500]);
    for (pos, bucket) in [
        (0, 0),
        (1023, 0),
        (1024, 1),
        (2047, 1),
        (2048, 2),
        (4095, 2),
    ] {
        assert_eq!(bucket_of(pos), bucket, "position {pos}");
    }
    for (i, r) in bucket_edges(100_000).iter().enumerate() {
        assert_eq!(bucket_of(r.start), i);
        assert_eq!(bucket_of(r.end - 1), i);
    }
}

/// Two documents, 1500 and 600 tokens; each label's loss is its label position, so every
/// bucket's count and mean can be worked out by hand.
#[test]
fn tokens_count_by_sequence_and_by_document_position() {
    let seq = PackedSequence::new(vec![0; 2100], &[[0, 1500], [1500, 2100]], None).unwrap();
    let losses: Vec<(usize, f64)> = seq
        .label_positions()
        .iter()
        .map(|&t| (t as usize, t as f64))
        .collect();
    let mut sums = PositionLosses::new(2100);
    sums.add(&seq, &losses).unwrap();
    let r = sums.report(Path::new("m"), Path::new("d"));
    let tokens = |b: &[prolong_eval::ppl::BucketReport]| -> Vec<u64> {
        b.iter().map(|b| b.tokens).collect()
    };
    // predicted tokens: 1..1499 and 1501..2099 in the sequence; 1..1499 and 1..599 in documents
    assert_eq!(tokens(&r.by_sequence_position), [1023, 1023, 52]);
    assert_eq!(tokens(&r.by_document_position), [1023 + 599, 476, 0]);
    assert_eq!(r.tokens, 2098);
    let seq_means: Vec<Option<f64>> = r.by_sequence_position.iter().map(|b| b.loss).collect();
    // bucket 2: predicted 2048..=2099, label positions 2047..=2098
    assert_eq!(seq_means[2], Some((2047.0 + 2098.0) / 2.0));
    assert_eq!(seq_means[0], Some(511.0));
    // document bucket 1: document 1 only, predicted 1024..=1499
    assert_eq!(
        r.by_document_position[1].loss,
        Some((1023.0 + 1498.0) / 2.0)
    );
    assert_eq!(r.by_document_position[2].loss, None);
    assert_eq!(r.by_document_position[2].perplexity, None);
    assert_eq!(r.by_document_position[1].label(), "1K–2K");
    assert_eq!(r.by_sequence_position[2].label(), "2K–2100");
    let too_long = PackedSequence::single(vec![0; 2101]);
    assert!(sums.add(&too_long, &[]).is_err());
}

#[test]
fn mean_loss_equals_llama_loss_over_the_same_sequences() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, ckpt) = (tmp.path().join("data"), tmp.path().join("model"));
    write_dataset(&data);
    let model = tiny_model(&ckpt);
    let report = evaluate(&model, &ckpt, &data, None, |_, _, _| {}).unwrap();
    let (mut sum, mut tokens) = (0.0, 0);
    for (ids, indices) in samples() {
        let out = model
            .loss(&PackedSequence::new(ids, &indices, None).unwrap())
            .unwrap();
        sum += out.loss_sum;
        tokens += out.label_tokens;
    }
    assert_eq!(report.sequences, 3);
    assert_eq!(report.seq_len, SEQ);
    assert_eq!(report.tokens, tokens as u64);
    let loss = report.loss.unwrap();
    assert!(
        (loss - sum / tokens as f64).abs() < 1e-9,
        "{loss} vs {sum}/{tokens}"
    );
    assert!((report.perplexity.unwrap() - loss.exp()).abs() < 1e-9);
    let bucket_tokens: u64 = report.by_document_position.iter().map(|b| b.tokens).sum();
    assert_eq!(bucket_tokens, report.tokens);

    let two = evaluate(&model, &ckpt, &data, Some(2), |_, _, _| {}).unwrap();
    assert_eq!(two.sequences, 2);
    assert!(two.tokens < report.tokens);
}

#[test]
fn cli_writes_the_json_report_and_svg_identically_on_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, ckpt) = (tmp.path().join("data"), tmp.path().join("model"));
    write_dataset(&data);
    tiny_model(&ckpt);
    let run = |out: &Path, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prolong-eval"));
        cmd.arg("ppl")
            .arg("--model")
            .arg(&ckpt)
            .arg("--data")
            .arg(&data);
        cmd.arg("--out").arg(out);
        if json {
            cmd.arg("--json");
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let table = run(&a, false);
    let stdout_json = run(&b, true);
    for f in ["ppl.json", "ppl.svg"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let text = std::fs::read_to_string(a.join("ppl.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "model",
            "data",
            "sequences",
            "seq_len",
            "tokens",
            "loss",
            "perplexity",
            "by_sequence_position",
            "by_document_position"
        ]
    );
    for key in ["by_sequence_position", "by_document_position"] {
        let b = v[key].as_array().unwrap();
        assert_eq!(b.len(), 1, "{key}: one bucket for {SEQ}-token sequences");
        let keys: Vec<&str> = b[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["start", "end", "tokens", "loss", "perplexity"]);
        assert_eq!(
            (b[0]["start"].as_u64(), b[0]["end"].as_u64()),
            (Some(0), Some(SEQ as u64))
        );
    }
    let report: PplReport = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::from_str::<PplReport>(&stdout_json).unwrap(),
        report
    );
    assert!(table.contains("within document") && table.contains(&format!("0–{SEQ}")));
    let svg = std::fs::read_to_string(a.join("ppl.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2);
}
