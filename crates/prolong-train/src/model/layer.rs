//! One decoder layer: forward keeping the activations its backward needs, and backward.
//!
//! ```text
//! n1 = rmsnorm(x)            q, k, v = n1·Wqᵀ, n1·Wkᵀ, n1·Wvᵀ     (RoPE on q, k)
//! x2 = x + attn(q, k, v)·Woᵀ
//! n2 = rmsnorm(x2)           h = silu(n2·Wgᵀ) ⊙ (n2·Wuᵀ)
//! y  = x2 + h·Wdᵀ
//! ```
//! The model keeps only each layer's input `x`; backward calls [`activations`] again on it
//! (layer-wise activation checkpointing) and walks the ops in reverse.

use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use crate::config::{Heads, LlamaConfig};
use crate::error::Result;
use crate::model::params::LayerParams;
use crate::ops::rope::Rope;
use crate::ops::{linear, rmsnorm, silu_mul};

/// What every layer of one forward pass shares.
pub(crate) struct Ctx<'a> {
    pub rope: Rope,
    pub heads: Heads,
    pub segments: &'a [Range<usize>],
    pub eps: f64,
    /// Ulysses sequence parallelism: the layer holds a token shard; attention
    /// ([`Ctx::attend`], `model/sp.rs`) exchanges heads for tokens around it.
    pub sp: Option<super::sp::SpAttention<'a>>,
}

impl<'a> Ctx<'a> {
    /// The context of tokens at `positions` (RoPE), cut into documents `segments`.
    pub fn new(
        config: &LlamaConfig,
        positions: &[u32],
        segments: &'a [Range<usize>],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let rope = Rope::new(
            config.rope_theta,
            config.head_dim(),
            positions,
            dtype,
            device,
        )?;
        Ok(Self {
            rope,
            heads: config.heads(),
            segments,
            eps: config.rms_norm_eps,
            sp: None,
        })
    }
}

/// Activations of one layer that its backward reads (T tokens, C hidden, F FFN,
/// H·D = q width, KV·D = kv width). The output `y` is not among them.
pub(crate) struct Acts {
    n1: Tensor,
    rstd1: Tensor,
    q: Tensor, // after RoPE; as attention read them (all tokens of a head shard under SP)
    k: Tensor, // after RoPE
    v: Tensor,
    att: Tensor,
    x2: Tensor,
    n2: Tensor,
    rstd2: Tensor,
    g: Tensor,
    u: Tensor,
    h: Tensor,
}

/// The layer output `y [T, C]`.
pub(crate) fn forward(x: &Tensor, p: &LayerParams, ctx: &Ctx) -> Result<Tensor> {
    let a = activations(x, p, ctx)?;
    output(&a.x2, &a.h, p)
}

/// Everything up to `h`, the input of the down projection (the backward pass recomputes
/// this from the layer input; it never needs `y`).
/// Per-token FLOPs of the projections here: 2·C·(H·D + 2·KV·D) + 2·H·D·C + 2·2·C·F.
pub(crate) fn activations(x: &Tensor, p: &LayerParams, ctx: &Ctx) -> Result<Acts> {
    let AttnInputs { n1, rstd1, q, k, v } = attn_inputs(x, p, ctx)?;
    let (att, [q, k, v]) = ctx.attend(q, k, v)?; // 4·H·D·Σ L²
    let Mlp {
        x2,
        n2,
        rstd2,
        g,
        u,
        h,
    } = attn_out_mlp(x, &att, p, ctx)?;
    Ok(Acts {
        n1,
        rstd1,
        q,
        k,
        v,
        att,
        x2,
        n2,
        rstd2,
        g,
        u,
        h,
    })
}

/// The attention inputs of a layer: `n1 = rmsnorm(x)` and its projections, RoPE on q, k.
pub(crate) struct AttnInputs {
    pub n1: Tensor,
    pub rstd1: Tensor,
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
}

/// `x [T, C]` → the attention inputs. The first half of the layer, shared by training
/// ([`activations`]) and the KV-cache step (model/decode.rs), which differ only in the
/// attention call between this and [`attn_out_mlp`].
pub(crate) fn attn_inputs(x: &Tensor, p: &LayerParams, ctx: &Ctx) -> Result<AttnInputs> {
    let (n1, rstd1) = rmsnorm::forward(x, &p.input_layernorm, ctx.eps)?;
    let q = ctx.rope.forward(&linear::forward(&n1, &p.q_proj)?)?; // 2·T·C·H·D
    let k = ctx.rope.forward(&linear::forward(&n1, &p.k_proj)?)?; // 2·T·C·KV·D
    let v = linear::forward(&n1, &p.v_proj)?; // 2·T·C·KV·D
    Ok(AttnInputs { n1, rstd1, q, k, v })
}

/// The second half of the layer up to the down projection's input.
pub(crate) struct Mlp {
    pub x2: Tensor,
    n2: Tensor,
    rstd2: Tensor,
    g: Tensor,
    u: Tensor,
    pub h: Tensor,
}

/// The attention output `att [T, H·D]` projected and added to the layer input `x`, then
/// the MLP up to `h`.
pub(crate) fn attn_out_mlp(x: &Tensor, att: &Tensor, p: &LayerParams, ctx: &Ctx) -> Result<Mlp> {
    let x2 = (x + linear::forward(att, &p.o_proj)?)?; // 2·T·H·D·C
    let (n2, rstd2) = rmsnorm::forward(&x2, &p.post_attention_layernorm, ctx.eps)?;
    let g = linear::forward(&n2, &p.gate_proj)?; // 2·T·C·F
    let u = linear::forward(&n2, &p.up_proj)?; // 2·T·C·F
    let h = silu_mul::forward(&g, &u)?;
    Ok(Mlp {
        x2,
        n2,
        rstd2,
        g,
        u,
        h,
    })
}

/// The layer output `y = x2 + h·Wdᵀ`.
pub(crate) fn output(x2: &Tensor, h: &Tensor, p: &LayerParams) -> Result<Tensor> {
    Ok((x2 + linear::forward(h, &p.down_proj)?)?) // 2·T·F·C
}

/// Gradient of the layer input and of every layer parameter, for `dy` = gradient of `y`.
/// `x` is the layer input, `a` the [`activations`] computed from it.
/// FLOPs: twice the forward's matmuls, plus the attention backward (8·H·D·Σ L²).
pub(crate) fn backward(
    dy: &Tensor,
    x: &Tensor,
    a: &Acts,
    p: &LayerParams,
    ctx: &Ctx,
) -> Result<(Tensor, LayerParams)> {
    // MLP
    let (dh, d_down) = linear::backward(dy, &a.h, &p.down_proj)?;
    let (dg, du) = silu_mul::backward(&dh, &a.g, &a.u)?;
    let (dn2_g, d_gate) = linear::backward(&dg, &a.n2, &p.gate_proj)?;
    let (dn2_u, d_up) = linear::backward(&du, &a.n2, &p.up_proj)?;
    let dn2 = (dn2_g + dn2_u)?;
    let (dx2_n, d_post) = rmsnorm::backward(&dn2, &a.x2, &p.post_attention_layernorm, &a.rstd2)?;
    let dx2 = (dy + dx2_n)?;
    // attention
    let (datt, d_o) = linear::backward(&dx2, &a.att, &p.o_proj)?;
    let (dq, dk, dv) = ctx.attend_backward(&datt, [&a.q, &a.k, &a.v])?;
    let dq = ctx.rope.backward(&dq)?;
    let dk = ctx.rope.backward(&dk)?;
    let (dn1_q, d_q) = linear::backward(&dq, &a.n1, &p.q_proj)?;
    let (dn1_k, d_k) = linear::backward(&dk, &a.n1, &p.k_proj)?;
    let (dn1_v, d_v) = linear::backward(&dv, &a.n1, &p.v_proj)?;
    let dn1 = ((dn1_q + dn1_k)? + dn1_v)?;
    let (dx_n, d_in) = rmsnorm::backward(&dn1, x, &p.input_layernorm, &a.rstd1)?;
    let dx = (dx2 + dx_n)?;
    Ok((
        dx,
        LayerParams {
            input_layernorm: d_in,
            q_proj: d_q,
            k_proj: d_k,
            v_proj: d_v,
            o_proj: d_o,
            post_attention_layernorm: d_post,
            gate_proj: d_gate,
            up_proj: d_up,
            down_proj: d_down,
        },
    ))
}
