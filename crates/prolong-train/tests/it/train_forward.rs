//! `prolong-train forward` on the HF golden fixture: logits and loss as transformers.

use crate::common::{golden_dir, norm_rel_err};
use crate::train_util as util;

use std::process::Command;

use candle_core::{DType, Device};

#[test]
fn forward_cli_matches_transformers_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let o = Command::new(util::bin())
        .arg("forward")
        .arg("--model")
        .arg(golden_dir().join("model"))
        .arg("--batch")
        .arg(golden_dir().join("reference.safetensors"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    let want =
        candle_core::safetensors::load(golden_dir().join("reference.safetensors"), &Device::Cpu)
            .unwrap();
    assert_eq!(got["logits"].dims(), &[96, 512]);
    let rel = norm_rel_err(&got["logits"], &want["logits"]);
    assert!(rel < 1e-4, "relative error {rel}");

    let loss: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("loss.json")).unwrap())
            .unwrap();
    let want_loss = loss["loss"].as_f64().unwrap();
    let got_loss = got["loss"]
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(
        (got_loss - want_loss).abs() < 1e-4 * want_loss,
        "{got_loss} vs {want_loss}"
    );
    assert_eq!(got["label_tokens"].to_scalar::<i64>().unwrap(), 92);
}

#[test]
fn forward_cli_bad_batch_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = tmp.path().join("b.safetensors");
    let mut m = std::collections::HashMap::new();
    m.insert(
        "tokens".to_string(),
        candle_core::Tensor::new(&[1i64, 2, 3], &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&m, &batch).unwrap();
    let o = Command::new(util::bin())
        .arg("forward")
        .arg("--model")
        .arg(golden_dir().join("model"))
        .arg("--batch")
        .arg(&batch)
        .arg("--out")
        .arg(tmp.path().join("o.safetensors"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("no `input_ids` tensor") && err.trim_end().lines().count() == 1,
        "{err}"
    );
}
