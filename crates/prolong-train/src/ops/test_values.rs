//! Inputs and comparisons shared by the ops' unit tests.

#![cfg(test)]

use candle_core::{DType, Device, Tensor};

/// Deterministic pseudo-random f64 values in `[-1.5, 1.5)` of `shape`; `seed` shifts them.
pub fn values(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f64 / 1013.0 - 0.5) * 3.0)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Largest absolute difference of two tensors of one shape (any float dtypes), in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}
