//! Rotary position embedding, HF "rotate_half" convention.
//!
//! For head dim `D` and `i < D/2`: `inv_freq[i] = θ^(−2i/D)`, angle `a = pos · inv_freq[i]`;
//! the pair `(x[i], x[i + D/2])` is rotated by `a`:
//! `y[i] = x[i] cos a − x[i+D/2] sin a`, `y[i+D/2] = x[i+D/2] cos a + x[i] sin a`.
//! The backward pass is the rotation by `−a`.

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// cos/sin tables for one sequence of positions, `[T, 1, D/2]` (broadcast over heads).
#[derive(Debug, Clone)]
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    neg_sin: Tensor,
    head_dim: usize,
}

impl Rope {
    /// Tables for `positions` (one per token). Angles are computed in f64, then cast.
    pub fn new(
        theta: f64,
        head_dim: usize,
        positions: &[u32],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(Error::Shape {
                op: "rope",
                msg: format!("head_dim {head_dim} must be positive and even"),
            });
        }
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        let t = positions.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for &p in positions {
            for &f in &inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let mk = |v: Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (t, 1, half), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?)
        };
        let sin = mk(sin)?;
        Ok(Self {
            cos: mk(cos)?,
            neg_sin: sin.neg()?,
            sin,
            head_dim,
        })
    }

    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rotates `x [T, H·D]` (heads side by side, as out of a q/k projection).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.rotate(x, &self.sin)
    }

    /// Gradient of `forward`'s input for `dy [T, H·D]`.
    pub fn backward(&self, dy: &Tensor) -> Result<Tensor> {
        self.rotate(dy, &self.neg_sin)
    }

    fn rotate(&self, x: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (t, width) = x.dims2()?;
        if t != self.len() || width % self.head_dim != 0 {
            return Err(Error::Shape {
                op: "rope",
                msg: format!(
                    "input [{t}, {width}] does not fit {} positions of head dim {}",
                    self.len(),
                    self.head_dim
                ),
            });
        }
        #[cfg(feature = "cuda")]
        if let Some(y) = crate::ops::cuda::fused::rope(x, &self.cos, sin, self.head_dim)? {
            return Ok(y);
        }
        let half = self.head_dim / 2;
        let x = x.reshape((t, width / self.head_dim, self.head_dim))?;
        let x1 = x.narrow(2, 0, half)?;
        let x2 = x.narrow(2, half, half)?;
        let y1 = (x1.broadcast_mul(&self.cos)? - x2.broadcast_mul(sin)?)?;
        let y2 = (x2.broadcast_mul(&self.cos)? + x1.broadcast_mul(sin)?)?;
        Ok(Tensor::cat(&[y1, y2], 2)?.reshape((t, width))?)
    }
}
