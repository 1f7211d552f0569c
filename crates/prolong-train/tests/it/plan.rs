//! The memory and FLOP plan on Llama-3-8B: each part of the worked example by hand,
//! what fits and what the plan suggests, and the layouts it refuses.

use prolong_train::config::LlamaConfig;
use prolong_train::plan::{PlanDevice, PlanError, PlanInput, ShardMode, parameter_counts};

/// Meta-Llama-3-8B's shape: the config.json the README's plan examples use.
fn llama3_8b() -> LlamaConfig {
    LlamaConfig::from_json(include_str!("../../../../pipelines/models/llama-3-8b.json")).unwrap()
}

fn stage1() -> PlanInput {
    PlanInput {
        model: llama3_8b(),
        seq_len: 65536,
        micro_batch: 1,
        tokens_per_step: 4_194_304,
        world: 8,
        sp: 1,
        shard: ShardMode::Full,
        recompute: true,
        loss_block: 2048,
        device_bytes: 80_000_000_000,
        dtype_bytes: 2,
        device: PlanDevice::Gpu,
    }
}

#[test]
fn llama3_8b_has_its_published_parameter_count() {
    let (p, pl) = parameter_counts(&llama3_8b());
    assert_eq!(p, 8_030_261_248);
    // 4096·(4096 + 2·1024 + 4096) + 3·4096·14336 + 2·4096
    assert_eq!(pl, 218_112_000);
}

/// The worked example: each part by hand, and stage 1 fits 8×80 GB.
#[test]
fn stage1_64k_fits_eight_80gb_gpus_with_full_sharding() {
    let plan = stage1().plan().unwrap();
    let by_name = |prefix: &str| {
        plan.parts
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .unwrap()
            .bytes
    };
    let p = 8_030_261_248.0;
    assert_eq!(by_name("owned f32"), 16.0 * p / 8.0);
    // The largest FSDP unit: the output projection and the final norm, not a layer.
    let head = 128256.0 * 4096.0 + 4096.0;
    assert_eq!(plan.largest_unit_parameters, 525_340_672);
    assert_eq!(by_name("gathered"), 2.0 * 2.0 * head);
    assert!(plan.parts.iter().all(|p| !p.name.starts_with("embedding")));
    assert_eq!(by_name("saved layer inputs"), 32.0 * 65536.0 * 4096.0 * 2.0);
    assert_eq!(
        by_name("one layer"),
        65536.0 * (4.0 * 4096.0 + 3.0 * 14336.0) * 2.0
    );
    assert_eq!(by_name("logits"), 2.0 * 2048.0 * 128256.0 * 4.0);
    assert_eq!(by_name("communication"), 2.0 * 4.0 * head);
    assert!(
        (plan.total_bytes / 1e9 - 49.4).abs() < 0.1,
        "{}",
        plan.total_bytes
    );
    assert!(plan.fits);
    assert!(plan.suggestions.is_empty());
}

/// Replicated state alone is 18 bytes a parameter: 8B does not fit, and the plan
/// names full sharding as the fix.
#[test]
fn ddp_does_not_fit_and_full_sharding_is_suggested() {
    let plan = PlanInput {
        shard: ShardMode::None,
        ..stage1()
    }
    .plan()
    .unwrap();
    assert!(plan.total_bytes > 18.0 * 8.03e9);
    assert!(!plan.fits);
    assert_eq!(plan.suggestions[0], "--shard full");
}

/// 512K on 8 ranks: too much without SP, and with SP 4 (79.8 GB, over the 72 GB
/// usable); SP 8 brings the per-rank tokens back to 64K and fits (52.1 GB).
#[test]
fn stage2_512k_fits_with_sp_8_only() {
    let s2 = PlanInput {
        seq_len: 524_288,
        tokens_per_step: 8 * 524_288,
        ..stage1()
    };
    let no_sp = s2.plan().unwrap();
    assert!(!no_sp.fits);
    assert!(
        no_sp.suggestions.iter().any(|s| s.starts_with("--sp 8")),
        "{:?}",
        no_sp.suggestions
    );
    let sp4 = PlanInput {
        sp: 4,
        ..s2.clone()
    }
    .plan()
    .unwrap();
    assert!(
        !sp4.fits && (sp4.total_bytes / 1e9 - 79.8).abs() < 0.1,
        "{}",
        sp4.total_bytes
    );
    let sp8 = PlanInput { sp: 8, ..s2 }.plan().unwrap();
    assert!(
        sp8.fits && (sp8.total_bytes / 1e9 - 52.1).abs() < 0.1,
        "{}",
        sp8.total_bytes
    );
    assert_eq!(sp8.tokens_per_rank, 65536);
    let ulysses = sp8
        .parts
        .iter()
        .find(|p| p.name.starts_with("Ulysses"))
        .unwrap();
    // 524,288 × (2·4096/8 + 2·128) × 2 bytes × 2 (with gradients) ≈ 2.7 GB.
    assert_eq!(ulysses.bytes, 524_288.0 * (1024.0 + 256.0) * 4.0);
}

/// 6 FLOPs per parameter and token for the layers' matmuls, causal attention over
/// one 64K document, the output projection on its 65,535 labels; 64 sequences.
#[test]
fn model_flops_are_six_n_per_token_plus_attention() {
    let plan = stage1().plan().unwrap();
    let m = llama3_8b();
    let (_, per_layer) = parameter_counts(&m);
    let matmuls = per_layer as f64 - 2.0 * 4096.0; // no norms
    let s = 65536.0f64;
    let attention = 12.0 * 4096.0 * s * (s + 1.0) / 2.0;
    let head = 6.0 * 4096.0 * 128256.0 * (s - 1.0);
    let per_seq = 32.0 * (6.0 * matmuls * s + attention) + head;
    let rel = (plan.step_model_flops - 64.0 * per_seq).abs() / plan.step_model_flops;
    assert!(rel < 1e-12, "{rel}");
    assert!(plan.step_hardware_flops > plan.step_model_flops);
    let no_recompute = PlanInput {
        recompute: false,
        ..stage1()
    };
    assert_eq!(
        no_recompute.plan().unwrap().step_hardware_flops,
        plan.step_model_flops
    );
}

#[test]
fn impossible_layouts_are_errors() {
    let bad = |input: PlanInput| input.plan().unwrap_err();
    assert_eq!(
        bad(PlanInput { sp: 3, ..stage1() }),
        PlanError::SpWorld { sp: 3, world: 8 }
    );
    assert_eq!(
        bad(PlanInput {
            world: 64,
            sp: 64,
            ..stage1()
        }),
        PlanError::SpHeads { sp: 64, heads: 32 }
    );
    assert_eq!(
        bad(PlanInput {
            world: 0,
            ..stage1()
        }),
        PlanError::Zero("--gpus")
    );
}
