//! The catalogue of malformed inputs for `prolong-train`: stage recipes and
//! the data they name. Each row builds one bad input and names the exact
//! outcome: one error line naming the file and position, before any training
//! (see `common/catalogue.rs` in prolong-data's tests).

use crate::train_util as util;

use std::path::Path;

use crate::common::catalogue::{Case, Outcome, run};

/// A valid recipe `dir/r.toml` (32-token sequences, one micro-batch of
/// four sequences, 2 steps) over a packed dataset `dir/data`, with `edit`
/// applied to its text.
fn config(dir: &Path, edit: impl FnOnce(String) -> String) {
    let data = dir.join("data");
    util::write_packed(&data, &util::random_samples(4, 32, 64, 1));
    let text = util::recipe(&data, &dir.join("out"), 32, 1, 2, 0, 64, 1e-3);
    util::write(&dir.join("r.toml"), &edit(text));
}

const TRAIN: &[&str] = &["train", "--quiet", "--config", "{dir}/r.toml"];

const CASES: &[Case] = &[
    Case {
        name: "train_config_missing",
        build: |_| {},
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml: No such file or directory (os error 2)"),
    },
    Case {
        name: "train_config_not_toml",
        build: |d| config(d, |t| t.replace("[train]", "[train")),
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml:16: unclosed table, expected `]`"),
    },
    Case {
        name: "train_unknown_key",
        build: |d| config(d, |t| t.replace("seed = 3", "seed = 3\nbatch = 4")),
        args: TRAIN,
        outcome: Outcome::Error(
            "{dir}/r.toml:22: unknown field `batch`, expected one of `steps`, `tokens_per_step`, `peak_lr`, `warmup`, `min_lr_ratio`, `weight_decay`, `decay_norms`, `clip`, `beta1`, `beta2`, `eps`, `seed`, `loss_block`, `loss_normalisation`, `threads`",
        ),
    },
    Case {
        name: "train_missing_model",
        build: |d| {
            config(d, |t| {
                let start = t.find("[model]").unwrap();
                let end = t.find("[data]").unwrap();
                format!("{}{}", &t[..start], &t[end..])
            })
        },
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml:1: missing field `model`"),
    },
    Case {
        name: "train_zero_steps",
        build: |d| config(d, |t| t.replace("steps = 2", "steps = 0")),
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml: train.steps must be positive"),
    },
    Case {
        name: "train_micro_batches_not_dividing",
        build: |d| {
            config(d, |t| {
                t.replace("tokens_per_step = 32", "tokens_per_step = 48")
            })
        },
        args: TRAIN,
        outcome: Outcome::Error(
            "{dir}/r.toml: train.tokens_per_step (48) must be a positive multiple of data.seq_len (32)",
        ),
    },
    Case {
        name: "train_negative_lr",
        build: |d| config(d, |t| t.replace("peak_lr = 0.001", "peak_lr = -0.001")),
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml: train.peak_lr (-0.001) must be positive"),
    },
    Case {
        name: "train_lr_not_a_number",
        build: |d| config(d, |t| t.replace("peak_lr = 0.001", "peak_lr = \"high\"")),
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml:19: invalid type: string \"high\", expected f64"),
    },
    Case {
        name: "train_warmup_past_one",
        build: |d| config(d, |t| t.replace("warmup = 0.1", "warmup = 1.5")),
        args: TRAIN,
        outcome: Outcome::Error("{dir}/r.toml: train.warmup (1.5) must be within [0, 1]"),
    },
    Case {
        name: "train_heads_not_dividing_hidden",
        build: |d| config(d, |t| t.replace("hidden = 32", "hidden = 30")),
        args: TRAIN,
        outcome: Outcome::Error(
            "{dir}/r.toml: [model.random]: num_attention_heads (4) does not divide hidden_size (30)",
        ),
    },
    Case {
        name: "train_missing_data",
        build: |d| {
            config(d, |t| t);
            std::fs::remove_dir_all(d.join("data")).unwrap();
        },
        args: TRAIN,
        outcome: Outcome::Error(
            "stage {dir}/r.toml: data: {dir}/data: not an MDS dataset: no such folder",
        ),
    },
    Case {
        name: "train_seq_len_other_than_the_data",
        build: |d| {
            config(d, |t| {
                t.replace("seq_len = 32", "seq_len = 64")
                    .replace("tokens_per_step = 32", "tokens_per_step = 64")
            })
        },
        args: TRAIN,
        outcome: Outcome::Error(
            "stage {dir}/r.toml: data: {dir}/data: sample 0: input_ids has 32 tokens, the configured sequence length is 64",
        ),
    },
    Case {
        name: "train_data_index_not_json",
        build: |d| {
            config(d, |t| t);
            std::fs::write(d.join("data/index.json"), "[").unwrap();
        },
        args: TRAIN,
        outcome: Outcome::Error(
            "stage {dir}/r.toml: data: {dir}/data: not an MDS dataset: {dir}/data/index.json: not an MDS index: EOF while parsing a list at line 1 column 1",
        ),
    },
];

#[test]
fn catalogue() {
    run(env!("CARGO_BIN_EXE_prolong-train"), CASES);
}
