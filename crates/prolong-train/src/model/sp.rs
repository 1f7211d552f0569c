//! Attention of one layer, on this rank alone or across a Ulysses sequence-parallel
//! group ([`crate::dist::ulysses`]).
//!
//! Under sequence parallelism a rank holds the token shard `[T/P, ·]` of every
//! activation outside attention. Around attention:
//!
//! ```text
//! forward   q [T/P, H·D], k, v [T/P, KV·D]  --all-to-all-->  [T, H/P·D], [T, KV/P·D]
//!           attention over whole documents (the full sequence's segments)
//!           out [T, H/P·D]                  --all-to-all-->  [T/P, H·D]
//! backward  d out [T/P, H·D]                --all-to-all-->  [T, H/P·D]
//!           attention backward
//!           dq, dk, dv [T, ·/P·D]           --all-to-all-->  [T/P, ·]   (replicated kv heads summed)
//! ```
//!
//! The model's backward is written by hand (no autograd), so the backward of each
//! all-to-all is simply the inverse all-to-all, called where the backward reaches it.
//! q, k and v travel in one exchange (one message per peer instead of three). The
//! layer keeps the gathered `[T, ·]` q, k, v for its backward (as many elements as the
//! token-shard ones), so the backward exchanges only the output gradient and dq, dk, dv.
//! Values travel as f32 (exact for bf16 and f32 alike).

use candle_core::{DType, Tensor};

use super::layer::Ctx;
use crate::dist::ulysses::{HeadKind, SeqGroup, Ulysses};
use crate::error::{Error, Result};
use crate::ops::attention::{self, AttentionInputs};

/// The sequence-parallel group and layout of a forward/backward pass.
#[derive(Clone, Copy)]
pub(crate) struct SpAttention<'a> {
    pub group: &'a SeqGroup<'a>,
    pub layout: Ulysses,
}

impl Ctx<'_> {
    /// Attention output `[tokens, H·D]` in the layer's token layout, and the q, k, v the
    /// backward ([`Ctx::attend_backward`]) needs (gathered `[T, ·]` under SP).
    /// FLOPs: 4·H·D·Σ L² over the whole world (4·H/P·D·Σ L² on each rank under SP).
    pub(crate) fn attend(&self, q: Tensor, k: Tensor, v: Tensor) -> Result<(Tensor, [Tensor; 3])> {
        let Some(sp) = &self.sp else {
            let att =
                attention::forward(AttentionInputs::new(&q, &k, &v, &self.heads, self.segments))?;
            return Ok((att, [q, k, v]));
        };
        let dtype = q.dtype();
        let [q, k, v] = sp.gather(To::Heads, qkv([&q, &k, &v]), dtype)?;
        let heads = sp.layout.local_heads();
        let att = attention::forward(AttentionInputs::new(&q, &k, &v, &heads, self.segments))?;
        let [att] = sp.gather(To::Tokens, [(&att, HeadKind::Query)], dtype)?;
        Ok((att, [q, k, v]))
    }

    /// `(dq, dk, dv)` in the layer's token layout for `datt`, the gradient of
    /// [`Ctx::attend`]'s output. FLOPs: 8·H·D·Σ L² (over the world).
    pub(crate) fn attend_backward(
        &self,
        datt: &Tensor,
        [q, k, v]: [&Tensor; 3],
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let Some(sp) = &self.sp else {
            return attention::backward(
                datt,
                AttentionInputs::new(q, k, v, &self.heads, self.segments),
            );
        };
        let dtype = datt.dtype();
        let [datt] = sp.gather(To::Heads, [(datt, HeadKind::Query)], dtype)?;
        let heads = sp.layout.local_heads();
        let (dq, dk, dv) =
            attention::backward(&datt, AttentionInputs::new(q, k, v, &heads, self.segments))?;
        let [dq, dk, dv] = sp.gather(To::Tokens, qkv([&dq, &dk, &dv]), dtype)?;
        Ok((dq, dk, dv))
    }
}

/// Which way one of Ulysses' all-to-alls goes: the two are each other's inverse.
#[derive(Clone, Copy)]
enum To {
    /// Token shards `[T/P, heads·D]` of all heads → all `T` tokens of this rank's head
    /// shard `[T, local heads·D]`.
    Heads,
    /// The reverse: this rank's token shard of all heads (a kv head held by several
    /// ranks gets the sum of theirs).
    Tokens,
}

impl SpAttention<'_> {
    /// Several tensors re-laid out `to` heads or tokens in one all-to-all.
    fn gather<const N: usize>(
        &self,
        to: To,
        xs: [(&Tensor, HeadKind); N],
        dtype: DType,
    ) -> Result<[Tensor; N]> {
        let l = &self.layout;
        let sends = xs
            .iter()
            .map(|(x, kind)| match to {
                To::Heads => Ok(l.seq_to_heads(*kind, &flat(x)?)?),
                // `[T, local heads, D]` is already one block per peer, in token order.
                To::Tokens => flat(x),
            })
            .collect::<Result<Vec<_>>>()?;
        let blocks: Vec<usize> = xs.iter().map(|(_, kind)| l.block_len(*kind)).collect();
        let recv = self.exchange(&sends, &blocks)?;
        let dev = xs[0].0.device();
        let out = recv
            .into_iter()
            .zip(xs.iter())
            .map(|(v, (_, kind))| {
                let (rows, v) = match to {
                    // What came back from peer p is p's tokens of our heads: in peer
                    // order, the blocks are already `[T, local heads·D]`.
                    To::Heads => (l.chunk() * l.world(), v),
                    To::Tokens => (l.chunk(), l.heads_to_seq(*kind, &v)?),
                };
                let width = v.len() / rows;
                Ok(Tensor::from_vec(v, (rows, width), dev)?.to_dtype(dtype)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(array(out))
    }

    /// One all-to-all for several buffers, each `P` blocks of `blocks[i]` elements (block
    /// `p` for group rank `p`): returns, per buffer, the `P` blocks received, in peer order.
    fn exchange(&self, sends: &[Vec<f32>], blocks: &[usize]) -> Result<Vec<Vec<f32>>> {
        let per_peer: usize = blocks.iter().sum();
        let peers = self.group.size();
        if let Some((buf, b)) = sends
            .iter()
            .zip(blocks)
            .find(|(s, b)| s.len() != *b * peers)
        {
            return Err(Error::Shape {
                op: "ulysses all-to-all",
                msg: format!("{} elements for {peers} blocks of {b}", buf.len()),
            });
        }
        let mut send = Vec::with_capacity(per_peer * peers);
        for p in 0..peers {
            for (buf, &b) in sends.iter().zip(blocks) {
                send.extend_from_slice(&buf[p * b..(p + 1) * b]);
            }
        }
        let recv = self.group.exchange(&send, per_peer)?;
        let mut out: Vec<Vec<f32>> = blocks
            .iter()
            .map(|&b| Vec::with_capacity(b * peers))
            .collect();
        for from_peer in recv.chunks_exact(per_peer.max(1)) {
            let mut at = 0;
            for (o, &b) in out.iter_mut().zip(blocks) {
                o.extend_from_slice(&from_peer[at..at + b]);
                at += b;
            }
        }
        Ok(out)
    }
}

fn flat(x: &Tensor) -> Result<Vec<f32>> {
    Ok(x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The `N` tensors made from `N` inputs.
fn array<const N: usize>(v: Vec<Tensor>) -> [Tensor; N] {
    v.try_into()
        .unwrap_or_else(|v: Vec<Tensor>| unreachable!("{} tensors made from {N} inputs", v.len()))
}

/// Queries (or their gradient) and keys and values, with the heads each is laid out in.
fn qkv([q, k, v]: [&Tensor; 3]) -> [(&Tensor, HeadKind); 3] {
    [
        (q, HeadKind::Query),
        (k, HeadKind::KeyValue),
        (v, HeadKind::KeyValue),
    ]
}
