//! Held-out evaluation: the held-out sequences are never handed out for training, their
//! choice depends on the eval seed and the streams only, and `[eval]` recipes record the
//! held-out loss (step 0, every K steps, the end) in metrics.jsonl and the summary.

use crate::train_util as util;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use prolong_train::data::{DataError, Mixture, MixtureLoader};
use prolong_train::stage::{EvalSection, StageConfig};
use prolong_train::train::eval::HeldOut;
use prolong_train::train::{TrainOptions, run};

/// A stream of `n` sequences of 8 tokens whose first token is `tag · 100 + i`.
fn stream(dir: &Path, tag: u32, n: usize) -> PathBuf {
    let samples: Vec<(Vec<u32>, Vec<u32>)> = (0..n)
        .map(|i| {
            let mut ids = vec![tag * 100 + i as u32];
            ids.extend(1..8);
            (ids, vec![0, 3, 3, 8])
        })
        .collect();
    util::write_packed(dir, &samples);
    dir.to_path_buf()
}

fn mixture(paths: &[&Path], proportions: &[&str]) -> Mixture {
    let args: Vec<String> = paths
        .iter()
        .zip(proportions)
        .map(|(p, q)| format!("{}@{q}", p.display()))
        .collect();
    Mixture::from_args(&args).unwrap()
}

#[test]
fn held_out_sequences_are_never_trained_on() {
    let tmp = tempfile::tempdir().unwrap();
    let a = stream(&tmp.path().join("a"), 1, 9);
    let b = stream(&tmp.path().join("b"), 2, 14);
    let mix = mixture(&[&a, &b], &["0.4", "0.6"]);
    let eval = EvalSection {
        sequences: 5,
        every: 0,
        seed: 9,
    };
    // Several epochs of both streams, under two data-order seeds.
    let mut chosen = Vec::new();
    for train_seed in [1, 2] {
        let mut loader = MixtureLoader::new(&mix, 100, 8, train_seed).unwrap();
        let held = HeldOut::new(&eval, &mix, &mut loader).unwrap();
        let held_ids: HashSet<u32> = held
            .samples()
            .iter()
            .map(|&(j, s)| loader.read(j, s).unwrap().input_ids[0])
            .collect();
        assert_eq!(held_ids.len(), 5);
        // floor(5 × 0.4) = 2 and floor(5 × 0.6) = 3: no remainder to place
        assert_eq!(held.samples().iter().filter(|s| s.0 == 0).count(), 2);
        let mut trained = HashSet::new();
        while let Some(s) = loader.next_sequence().unwrap() {
            trained.insert(s.input_ids[0]);
        }
        assert!(trained.is_disjoint(&held_ids), "{trained:?} ∩ {held_ids:?}");
        // every other sample is trained on (100 sequences cover both streams many times)
        assert_eq!(trained.len() + held_ids.len(), 9 + 14);
        chosen.push(held.samples().to_vec());
    }
    // The choice does not depend on the data order's seed (stage 1 and stage 2 over the
    // same streams hold out the same sequences).
    assert_eq!(chosen[0], chosen[1]);

    // Holding out a whole stream that the stage draws from is one clear error.
    let mut loader = MixtureLoader::new(&mix, 10, 8, 1).unwrap();
    let all = EvalSection {
        sequences: 40,
        every: 0,
        seed: 0,
    };
    let e = HeldOut::new(&all, &mix, &mut loader).err().unwrap();
    assert!(
        matches!(
            &e,
            prolong_train::train::TrainError::Data(DataError::HoldOut { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("leaves none to train on"), "{e}");
}

#[test]
fn held_out_loss_is_recorded_and_falls() {
    // Documents that repeat a short cycle: held-out ones follow the same rule.
    let samples: Vec<(Vec<u32>, Vec<u32>)> = (0..12)
        .map(|i| {
            (
                (0..32).map(|t| ((t + i) % 5) as u32 + 3).collect(),
                vec![0, 32],
            )
        })
        .collect();
    let (tmp, data, out) = util::temp_packed(&samples);
    let text =
        util::recipe(&data, &out, 32, 1, 16, 0, 16, 1e-2) + "\n[eval]\nsequences = 3\nevery = 5\n";
    let path = util::write(&tmp.path().join("r.toml"), &text);
    let cfg = StageConfig::load(&path).unwrap();
    let s = run(&path, &cfg, &TrainOptions::default()).unwrap();

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let evals: Vec<(u64, f64)> = lines
        .iter()
        .filter(|v| v.get("eval_loss").is_some())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["eval_loss"].as_f64().unwrap(),
            )
        })
        .collect();
    let steps: Vec<u64> = evals.iter().map(|e| e.0).collect();
    assert_eq!(steps, [0, 5, 10, 15, 16]);
    // every step still has its full record, in order, each evaluation after its step
    let order: Vec<(u64, bool)> = lines
        .iter()
        .map(|v| (v["step"].as_u64().unwrap(), v.get("loss").is_some()))
        .collect();
    assert_eq!(order.iter().filter(|o| o.1).count(), 16);
    assert!(order.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(order[0], (0, false));
    assert_eq!(order[1], (1, true));
    // 3 sequences × 31 labels each
    assert!(
        lines
            .iter()
            .all(|v| v.get("eval_loss").is_none() || v["eval_tokens"].as_u64() == Some(3 * 31))
    );

    let (first, last) = (evals[0].1, evals[4].1);
    assert!(
        (first - 16f64.ln()).abs() < 0.3,
        "initial held-out loss {first}"
    );
    assert!(last < 0.5 * first, "held-out loss {first} → {last}");
    assert_eq!(s.first_eval_loss, Some(first));
    assert_eq!(s.final_eval_loss, Some(last));
    assert_eq!(s.eval_sequences, 3);
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 5, "one dot per evaluation");
    assert!(svg.contains("held-out loss"));

    // A resume with a different [eval] is refused (the held-out set decides what trains).
    let changed = text.replace("sequences = 3", "sequences = 2");
    let p2 = util::write(&tmp.path().join("r2.toml"), &changed);
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let e = run(&p2, &StageConfig::load(&p2).unwrap(), &resume)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("[eval] differs"), "{e}");
}
