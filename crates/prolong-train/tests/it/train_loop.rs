//! The training loop end to end in-process: the loss falls on repetitive data, checkpoints
//! land where documented, and stage 2 continues stage 1's Adam state with a fresh schedule.

use crate::train_util as util;

use std::path::Path;

use prolong_train::metrics::StepRecord;
use prolong_train::stage::StageConfig;
use prolong_train::train::{TrainOptions, TrainSummary, run};

/// Trains the recipe at `path` with the default options.
fn train(path: &Path) -> TrainSummary {
    run(
        path,
        &StageConfig::load(path).unwrap(),
        &TrainOptions::default(),
    )
    .unwrap()
}

fn records(out: &Path) -> Vec<StepRecord> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"eval_loss\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Documents that repeat a short cycle of tokens: a model learns them in a few dozen steps.
fn repetitive(n: usize, len: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..n)
        .map(|i| {
            let ids: Vec<u32> = (0..len).map(|t| ((t + i) % 8) as u32 + 3).collect();
            (ids, vec![0, len as u32 / 2, len as u32 / 2, len as u32])
        })
        .collect()
}

#[test]
fn loss_falls_on_repetitive_data() {
    let (tmp, data, out) = util::temp_packed(&repetitive(16, 64));
    let text = util::recipe(&data, &out, 64, 2, 40, 20, 64, 1e-2);
    let path = util::write(&tmp.path().join("r.toml"), &text);
    let cfg = StageConfig::load(&path).unwrap();
    let s = run(&path, &cfg, &TrainOptions::default()).unwrap();
    assert_eq!((s.steps, s.steps_run, s.resumed_from), (40, 40, None));
    let r = records(&out);
    assert_eq!(r.len(), 40);
    assert_eq!(r[0].lr, 0.0); // HF warmup: the first step runs at lr 0
    assert_eq!(r.last().unwrap().tokens, 40 * 128);
    let first = r[0].loss;
    let last = r[35..].iter().map(|x| x.loss).sum::<f64>() / 5.0;
    assert!((first - (64f64).ln()).abs() < 0.3, "initial loss {first}");
    assert!(last < 0.25 * first, "loss {first} → {last}");
    // layout
    for p in [
        "checkpoints/step-0000020/model.safetensors",
        "checkpoints/step-0000020/config.json",
        "checkpoints/step-0000020/optimizer/exp_avg.safetensors",
        "checkpoints/step-0000020/optimizer/exp_avg_sq.safetensors",
        "checkpoints/step-0000020/optimizer/state.json",
        "checkpoints/step-0000020/trainer_state.json",
        "final/model.safetensors",
        "final/trainer_state.json",
        "loss.svg",
    ] {
        assert!(out.join(p).is_file(), "{p}");
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
    // A second run into the same directory without --resume refuses.
    let e = run(&path, &cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("pass --resume"), "{e}");
    // With --resume after the end there is nothing left to do.
    let again = TrainOptions {
        resume: true,
        ..Default::default()
    };
    assert_eq!(run(&path, &cfg, &again).unwrap().steps_run, 0);
    // `[data] apply_mask` is part of the recorded recipe: a resume that changes it refuses.
    let mut masked = cfg.clone();
    masked.data.apply_mask = true;
    let e = run(&path, &masked, &again).unwrap_err().to_string();
    assert!(e.contains("[data] differs"), "{e}");
}

#[test]
fn stage_two_keeps_adam_state_with_a_fresh_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &util::random_samples(8, 32, 64, 4));
    let out1 = tmp.path().join("s1");
    let t1 = util::recipe(&data, &out1, 32, 1, 6, 0, 64, 1e-3);
    let p1 = util::write(&tmp.path().join("s1.toml"), &t1);
    train(&p1);

    let out2 = tmp.path().join("s2");
    let t2 = util::recipe(&data, &out2, 32, 1, 4, 0, 64, 5e-4);
    // replace the random init by stage 1's final checkpoint and its moments
    let model = t2.split("[data]").next().unwrap().to_string();
    let t2 = t2.replace(
        &model,
        &format!(
            "name = \"s2\"\n[model]\ninit = \"{}\"\nkeep_optimizer = true\nrope_theta = 1.28e8\n\n",
            out1.join("final").display()
        ),
    );
    let p2 = util::write(&tmp.path().join("s2.toml"), &t2);
    train(&p2);

    let r = records(&out2);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].step, 1);
    assert_eq!(r[0].lr, 0.0); // fresh warmup
    let opt: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out2.join("final/optimizer/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(opt["step"], 10); // Adam's t continues: 6 + 4
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("final/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["rope_theta"], 1.28e8);

    // keep_optimizer on a plain HF directory is one clear error
    let hf = tmp.path().join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(out1.join("final").join(f), hf.join(f)).unwrap();
    }
    let t3 = t2.replace(
        &out1.join("final").display().to_string(),
        &hf.display().to_string(),
    );
    let t3 = t3.replace(
        &out2.display().to_string(),
        &tmp.path().join("s3").display().to_string(),
    );
    let p3 = util::write(&tmp.path().join("s3.toml"), &t3);
    let e = run(
        &p3,
        &StageConfig::load(&p3).unwrap(),
        &TrainOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no optimizer state"), "{e}");
}

/// bf16 compute keeps fp32 master weights in the optimizer state, saves them, and a
/// resumed run continues from them.
#[test]
fn bf16_compute_keeps_fp32_masters() {
    let (tmp, data, out) = util::temp_packed(&repetitive(8, 64));
    let text = util::recipe(&data, &out, 64, 1, 12, 6, 64, 1e-2)
        .replace("[model]\n", "[model]\ndtype = \"bf16\"\n");
    let path = util::write(&tmp.path().join("r.toml"), &text);
    train(&path);
    let r = records(&out);
    assert!(r.iter().all(|x| x.loss.is_finite()));
    assert!(
        r[11].loss < 0.5 * r[0].loss,
        "{} → {}",
        r[0].loss,
        r[11].loss
    );
    let master = out.join("final/optimizer/master.safetensors");
    let t = candle_core::safetensors::load(&master, &candle_core::Device::Cpu).unwrap();
    assert_eq!(t["lm_head.weight"].dtype(), candle_core::DType::F32);
    let w = candle_core::safetensors::load(
        out.join("final/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(w["lm_head.weight"].dtype(), candle_core::DType::BF16);

    // resume from step 6 in a copy: same curve
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(copy.join("checkpoints")).unwrap();
    let src = out.join("checkpoints/step-0000006");
    let dst = copy.join("checkpoints/step-0000006");
    crate::common::copy_dir(&src, &dst);
    let text2 = text.replace(&out.display().to_string(), &copy.display().to_string());
    let p2 = util::write(&tmp.path().join("r2.toml"), &text2);
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let s = run(&p2, &StageConfig::load(&p2).unwrap(), &resume).unwrap();
    assert_eq!((s.resumed_from, s.steps_run), (Some(6), 6));
    let r2 = records(&copy);
    for (a, b) in r.iter().zip(&r2) {
        assert_eq!((a.step, a.loss, a.grad_norm), (b.step, b.loss, b.grad_norm));
    }
    assert!(
        std::fs::read(out.join("final/model.safetensors")).unwrap()
            == std::fs::read(copy.join("final/model.safetensors")).unwrap()
    );
}
