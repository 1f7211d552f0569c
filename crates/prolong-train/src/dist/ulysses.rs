//! Ulysses sequence parallelism: `P` ranks share one packed sequence of `T` tokens.
//!
//! Outside attention every op works token by token, so rank `r` holds the contiguous
//! token shard [`Ulysses::tokens`]`(r)` (`T / P` tokens) of all heads: embeddings,
//! norms, projections, MLP, loss. RoPE uses the tokens' positions in the whole packed
//! sequence (the shard's range, not `0..T/P`), and the labels of a shard are the labels
//! of the whole sequence at the shard's positions: a document crossing a shard boundary
//! keeps the label of its token before the boundary (its target is the next shard's
//! first token, read from the full `input_ids` every rank has).
//!
//! Attention needs whole documents, and documents cross shard boundaries wherever the
//! packing put them. So before attention an all-to-all trades `[T/P, heads, D]` on every
//! rank for `[T, heads/P, D]`: rank `r` then holds *all* tokens of its head shard
//! ([`Ulysses::heads`]) and runs the document-masked attention over the sequence's full
//! `cu_seqlens`, exactly as a single GPU would for those heads. A second all-to-all
//! brings the attention output (query heads) back to token shards. Splitting the
//! documents by shard instead (each rank attending within its own tokens) is the bug of
//! ProLong's issue #17; the tests check the gathered layout against the single-device
//! attention with documents crossing shard boundaries.
//!
//! Grouped-query heads: query head `h` reads kv head `h / G`, `G = H / KV`. With
//! `KV ≥ P` (and `P | KV`) rank `r` gets kv heads `r·KV/P ..` and the query heads that
//! read them. With `KV < P` (and `KV | P`) each kv head is sent to the `P / KV` ranks whose
//! query heads read it (rank `r` gets kv head `⌊r·KV/P⌋`), so K and V are replicated
//! across ranks (not repeated per query head); in the backward all-to-all the gradients
//! of a replicated kv head are summed over its ranks ([`Ulysses::heads_to_seq`] adds).
//!
//! Buffers are row-major `[tokens, heads, D]` (a candle `[T, heads·D]` tensor's memory).
//! The all-to-all moves one equal block per peer (NCCL grouped send/recv): the send
//! buffer is the blocks for ranks `0..P` in order, the receive buffer the blocks from
//! ranks `0..P` in order.

use std::ops::{AddAssign, Range};

use super::group::{Blocks, ProcessGroup, as_bytes, as_bytes_mut};
use super::{DistError, DistResult};
use crate::PackedSequence;
use crate::config::Heads;

/// Query heads or key/value heads (the latter possibly replicated across ranks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    Query,
    KeyValue,
}

/// The sequence-parallel layout of one model on `world` ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulysses {
    world: usize,
    heads: Heads,
    seq_len: usize,
}

impl Ulysses {
    pub fn new(world: usize, heads: Heads, seq_len: usize) -> DistResult<Self> {
        let Heads {
            n_head: h,
            n_kv_head: kv,
            head_dim: d,
        } = heads;
        let bad = |why: String| Err(DistError::Layout(why));
        if world == 0 || kv == 0 || d == 0 || h % kv != 0 {
            return bad(format!("world {world} with heads {heads:?}"));
        }
        if h % world != 0 {
            return bad(format!("{h} query heads over {world} ranks"));
        }
        if kv % world != 0 && world % kv != 0 {
            return bad(format!(
                "{kv} kv heads over {world} ranks (one must divide the other)"
            ));
        }
        if seq_len % world != 0 {
            return bad(format!("{seq_len} tokens over {world} ranks"));
        }
        Ok(Self {
            world,
            heads,
            seq_len,
        })
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// Tokens per rank outside attention.
    pub fn chunk(&self) -> usize {
        self.seq_len / self.world
    }

    /// The token shard of `rank` (positions in the packed sequence).
    pub fn tokens(&self, rank: usize) -> Range<usize> {
        rank * self.chunk()..(rank + 1) * self.chunk()
    }

    /// Heads of `kind` that `rank` holds for attention.
    pub fn heads(&self, kind: HeadKind, rank: usize) -> Range<usize> {
        let (total, per) = (self.total_heads(kind), self.heads_per_rank(kind));
        let start = rank * total / self.world;
        start..start + per
    }

    /// The head layout of a rank's attention call: `H / P` query heads reading
    /// `max(KV / P, 1)` kv heads.
    pub fn local_heads(&self) -> Heads {
        Heads {
            n_head: self.heads_per_rank(HeadKind::Query),
            n_kv_head: self.heads_per_rank(HeadKind::KeyValue),
            head_dim: self.heads.head_dim,
        }
    }

    /// Elements per peer in either all-to-all of `kind`: `T/P · heads_per_rank · D`.
    pub fn block_len(&self, kind: HeadKind) -> usize {
        self.chunk() * self.heads_per_rank(kind) * self.heads.head_dim
    }

    /// The send buffer of the all-to-all before attention: `local [T/P, heads, D]` cut into
    /// one `[T/P, heads(kind, peer), D]` block per peer. The receive buffer it produces
    /// on each rank is already `[T, heads(kind, rank), D]` (blocks in token order).
    pub fn seq_to_heads<E: Copy>(&self, kind: HeadKind, local: &[E]) -> DistResult<Vec<E>> {
        let (total, d) = (self.total_heads(kind), self.heads.head_dim);
        self.expect_len("token-shard", local.len(), self.chunk() * total * d)?;
        let mut send = Vec::with_capacity(self.world * self.block_len(kind));
        for peer in 0..self.world {
            let hs = self.heads(kind, peer);
            for row in local.chunks_exact(total * d) {
                send.extend_from_slice(&row[hs.start * d..hs.end * d]);
            }
        }
        Ok(send)
    }

    /// After the all-to-all that follows attention (whose send buffer is the rank's
    /// `[T, heads(kind, rank), D]` itself, blocks in token order): the received blocks,
    /// one `[T/P, heads(kind, peer), D]` from each peer, put back into `[T/P, heads, D]`.
    /// A kv head held by several ranks gets the sum of their blocks (its gradient).
    pub fn heads_to_seq<E: Copy + Default + AddAssign>(
        &self,
        kind: HeadKind,
        recv: &[E],
    ) -> DistResult<Vec<E>> {
        let (total, d) = (self.total_heads(kind), self.heads.head_dim);
        self.expect_len("received", recv.len(), self.world * self.block_len(kind))?;
        let mut out = vec![E::default(); self.chunk() * total * d];
        for (peer, block) in recv.chunks_exact(self.block_len(kind)).enumerate() {
            let hs = self.heads(kind, peer);
            let width = hs.len() * d;
            for (row, src) in out
                .chunks_exact_mut(total * d)
                .zip(block.chunks_exact(width))
            {
                for (o, &s) in row[hs.start * d..hs.end * d].iter_mut().zip(src) {
                    *o += s;
                }
            }
        }
        Ok(out)
    }

    /// The labels of `rank`'s token shard: `(positions in the packed sequence, targets)`,
    /// the whole sequence's labels that fall in the shard.
    pub fn shard_labels(&self, seq: &PackedSequence, rank: usize) -> (Vec<u32>, Vec<u32>) {
        let tokens = self.tokens(rank);
        let pos = seq.label_positions();
        let lo = pos.partition_point(|&p| (p as usize) < tokens.start);
        let hi = pos.partition_point(|&p| (p as usize) < tokens.end);
        (pos[lo..hi].to_vec(), seq.label_targets()[lo..hi].to_vec())
    }

    fn total_heads(&self, kind: HeadKind) -> usize {
        match kind {
            HeadKind::Query => self.heads.n_head,
            HeadKind::KeyValue => self.heads.n_kv_head,
        }
    }

    fn heads_per_rank(&self, kind: HeadKind) -> usize {
        (self.total_heads(kind) / self.world).max(1)
    }

    fn expect_len(&self, what: &str, got: usize, want: usize) -> DistResult<()> {
        if got == want {
            return Ok(());
        }
        Err(DistError::Layout(format!(
            "{what} buffer has {got} elements, the layout {self:?} needs {want}"
        )))
    }
}

/// The sequence-parallel group of this rank: the `size` consecutive ranks
/// `⌊rank / size⌋·size ..` of the world, which share one packed sequence.
///
/// The exchanges are all-to-alls over the whole world with empty blocks for the ranks
/// outside the group, so no sub-communicator is needed and the groups of a DP × SP run
/// exchange side by side (every rank makes the same calls in the same order: the
/// data-parallel groups train equally many sequences of equal length). A backend with
/// sub-communicators (NCCL) would give each group its own instead.
pub struct SeqGroup<'a> {
    world: &'a dyn ProcessGroup,
    first: usize,
    size: usize,
}

impl<'a> SeqGroup<'a> {
    /// The group of `size` consecutive ranks this rank belongs to.
    pub fn new(world: &'a dyn ProcessGroup, size: usize) -> DistResult<Self> {
        if size == 0 || world.size() % size != 0 {
            return Err(DistError::Layout(format!(
                "sequence-parallel groups of {size} ranks in a world of {}",
                world.size()
            )));
        }
        Ok(Self {
            world,
            first: world.rank() / size * size,
            size,
        })
    }

    /// This rank's place in its group (its token shard).
    pub fn rank(&self) -> usize {
        self.world.rank() - self.first
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Block `p` of `send` (`block` elements each, `size()` of them) goes to group
    /// rank `p`; the result holds the blocks received from group ranks `0..size()` in
    /// order.
    pub fn exchange(&self, send: &[f32], block: usize) -> DistResult<Vec<f32>> {
        let world = self.world.size();
        let bytes = block * std::mem::size_of::<f32>();
        let counts: Vec<usize> = (0..world)
            .map(|r| {
                if (self.first..self.first + self.size).contains(&r) {
                    bytes
                } else {
                    0
                }
            })
            .collect();
        let mut recv = vec![0f32; block * self.size];
        self.world.all_to_all(
            Blocks::new(as_bytes(send), &counts),
            Blocks::new(as_bytes_mut(&mut recv), &counts),
        )?;
        Ok(recv)
    }
}
