//! Run-to-run determinism of the CPU kernels the trainer relies on: the same matmul (large
//! enough that gemm splits it over threads) and the same training step give identical bits
//! each time for a fixed thread count. (Exact resume is tested in train_resume.rs.)

use candle_core::{DType, Device, Tensor};
use prolong_train::PackedSequence;
use prolong_train::stage::LossNormalisation;
use prolong_train::train::accumulate;
use prolong_train::train::init::random_llama;

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn matmul_and_training_step_are_deterministic_run_to_run() {
    // Only this test runs in this binary, before any other thread reads the variable.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "2") };
    let a = Tensor::randn(0f32, 1.0, (384, 700), &Device::Cpu).unwrap();
    let b = Tensor::randn(0f32, 1.0, (700, 520), &Device::Cpu).unwrap();
    let first = bits(&a.matmul(&b).unwrap());
    for _ in 0..5 {
        assert!(bits(&a.matmul(&b).unwrap()) == first);
    }

    let cfg = prolong_train::LlamaConfig::from_json(
        r#"{"vocab_size": 300, "hidden_size": 64, "intermediate_size": 160,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "rope_theta": 8e6}"#,
    )
    .unwrap();
    let model = random_llama(&cfg, 3, 0.02, DType::F32, &Device::Cpu).unwrap();
    let ids: Vec<u32> = (0..512u32).map(|i| (i * 7919 + 13) % 300).collect();
    let seq = PackedSequence::new(ids, &[[0, 200], [200, 512]], None).unwrap();
    let run = || {
        let (loss, g) = accumulate(
            &model,
            std::slice::from_ref(&seq),
            128,
            LossNormalisation::Sequence,
        )
        .unwrap();
        (
            loss.to_bits(),
            g.tensors.iter().map(bits).collect::<Vec<_>>(),
        )
    };
    let r0 = run();
    for _ in 0..3 {
        assert!(run() == r0);
    }
}
