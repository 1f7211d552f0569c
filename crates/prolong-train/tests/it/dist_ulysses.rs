//! Ulysses sequence parallelism on CPU: the all-to-all layouts against a naive gather,
//! and per-rank attention over the gathered heads against single-device attention, with
//! random documents crossing shard boundaries (ProLong's issue #17), forward and backward.

use crate::common;

use crate::common::{Rng, to_f64_vec};
use candle_core::{Device, Tensor};
use prolong_packed::CuSeqlens;
use prolong_train::PackedSequence;
use prolong_train::dist::ulysses::{HeadKind, Ulysses};
use prolong_train::ops::attention::{self, AttentionInputs, Heads};

/// What NCCL's all-to-all does: rank `d` receives block `d` of every rank's send buffer,
/// in rank order.
fn all_to_all(send: &[Vec<f64>], block: usize) -> Vec<Vec<f64>> {
    (0..send.len())
        .map(|d| {
            send.iter()
                .flat_map(|s| s[d * block..(d + 1) * block].iter().copied())
                .collect()
        })
        .collect()
}

/// Random documents: pieces of random lengths (1-token pieces and gaps included).
fn random_sequence(rng: &mut Rng, t: usize) -> PackedSequence {
    let mut indices = Vec::new();
    let mut at = 0;
    while at < t {
        let gap = usize::from(rng.below(4) == 0);
        let len = 1 + rng.below(t / 2);
        let s = (at + gap).min(t);
        let e = (s + len).min(t);
        indices.push([s, e]);
        at = e;
    }
    PackedSequence::new(rng.tokens(t, 50), &indices, None).unwrap()
}

/// `rows [T, heads·D]` → the value of token `t`, head `h`, dim `i`.
fn at(rows: &[f64], heads: usize, d: usize, t: usize, h: usize, i: usize) -> f64 {
    rows[(t * heads + h) * d + i]
}

/// Token rows `range` of a row-major `[T, w]` buffer.
fn rows(x: &[f64], w: usize, range: std::ops::Range<usize>) -> Vec<f64> {
    x[range.start * w..range.end * w].to_vec()
}

fn tensor(v: Vec<f64>, t: usize) -> Tensor {
    let w = v.len() / t;
    Tensor::from_vec(v, (t, w), &Device::Cpu).unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// (world, query heads, kv heads): kv heads split (KV ≥ P), replicated (KV < P), MHA.
const LAYOUTS: [(usize, usize, usize); 5] = [(2, 4, 2), (4, 8, 2), (4, 8, 1), (2, 2, 2), (4, 8, 8)];

#[test]
fn seq_to_heads_gathers_all_tokens_of_the_rank_heads() {
    let mut rng = Rng::new(1);
    for (p, h, kv) in LAYOUTS {
        let d = 3;
        let t = p * (2 + rng.below(5));
        let heads = Heads {
            n_head: h,
            n_kv_head: kv,
            head_dim: d,
        };
        let sp = Ulysses::new(p, heads, t).unwrap();
        for (kind, nh) in [(HeadKind::Query, h), (HeadKind::KeyValue, kv)] {
            let full: Vec<f64> = (0..t * nh * d).map(|_| rng.uniform()).collect();
            let send: Vec<Vec<f64>> = (0..p)
                .map(|r| {
                    sp.seq_to_heads(kind, &rows(&full, nh * d, sp.tokens(r)))
                        .unwrap()
                })
                .collect();
            let recv = all_to_all(&send, sp.block_len(kind));
            for (r, got) in recv.iter().enumerate() {
                let hs = sp.heads(kind, r);
                let want: Vec<f64> = (0..t)
                    .flat_map(|tok| hs.clone().map(move |hh| (tok, hh)))
                    .flat_map(|(tok, hh)| (0..d).map(move |i| (tok, hh, i)))
                    .map(|(tok, hh, i)| at(&full, nh, d, tok, hh, i))
                    .collect();
                assert_eq!(got, &want, "P={p} H={h} KV={kv} {kind:?} rank {r}");
            }
            // Back: query heads return unchanged; a kv head held by k ranks comes back k times.
            let back = all_to_all(&recv, sp.block_len(kind));
            let copies = if kind == HeadKind::KeyValue && kv < p {
                p / kv
            } else {
                1
            };
            for (r, b) in back.iter().enumerate() {
                let local = rows(&full, nh * d, sp.tokens(r));
                let got = sp.heads_to_seq(kind, b).unwrap();
                let want: Vec<f64> = local.iter().map(|x| x * copies as f64).collect();
                assert!(
                    max_diff(&got, &want) < 1e-12,
                    "P={p} {kind:?} back, rank {r}"
                );
            }
        }
    }
}

/// Every rank's query heads read only the kv heads it received (GQA mapping preserved).
#[test]
fn each_rank_receives_the_kv_heads_its_query_heads_read() {
    for (p, h, kv) in LAYOUTS {
        let heads = Heads {
            n_head: h,
            n_kv_head: kv,
            head_dim: 4,
        };
        let sp = Ulysses::new(p, heads, p).unwrap();
        for r in 0..p {
            let (qs, kvs) = (
                sp.heads(HeadKind::Query, r),
                sp.heads(HeadKind::KeyValue, r),
            );
            let local = sp.local_heads();
            assert_eq!((qs.len(), kvs.len()), (local.n_head, local.n_kv_head));
            for (i, q) in qs.enumerate() {
                // Global mapping q / (H/KV) equals the local one i / (H_local/KV_local).
                assert_eq!(
                    q / (h / kv),
                    kvs.start + i / (local.n_head / local.n_kv_head)
                );
            }
        }
    }
}

/// Sequence-parallel attention (forward and backward) equals single-device attention.
#[test]
fn per_rank_attention_over_gathered_heads_matches_one_device() {
    let mut rng = Rng::new(7);
    let mut crossings = 0;
    for (p, h, kv) in LAYOUTS {
        let d = 4;
        let t = p * (5 + rng.below(8));
        let seq = random_sequence(&mut rng, t);
        // Some document must cross a shard boundary for the test to mean anything.
        let cu = CuSeqlens::from_segments(seq.segments()).unwrap();
        let chunk = t / p;
        crossings += (1..p)
            .filter(|r| cu.doc_of(r * chunk - 1) == cu.doc_of(r * chunk))
            .count();
        let heads = Heads {
            n_head: h,
            n_kv_head: kv,
            head_dim: d,
        };
        let sp = Ulysses::new(p, heads, t).unwrap();
        let vals = |n: usize, rng: &mut Rng| (0..n).map(|_| rng.uniform()).collect::<Vec<_>>();
        let (q, k, v, dout) = (
            vals(t * h * d, &mut rng),
            vals(t * kv * d, &mut rng),
            vals(t * kv * d, &mut rng),
            vals(t * h * d, &mut rng),
        );
        let segs = seq.segments();
        let (qt, kt, vt, dt) = (
            tensor(q.clone(), t),
            tensor(k.clone(), t),
            tensor(v.clone(), t),
            tensor(dout.clone(), t),
        );
        let whole = AttentionInputs::new(&qt, &kt, &vt, &heads, segs);
        let want_out = to_f64_vec(&attention::forward(whole).unwrap());
        let (wdq, wdk, wdv) = attention::backward(&dt, whole).unwrap();
        let (wdq, wdk, wdv) = (to_f64_vec(&wdq), to_f64_vec(&wdk), to_f64_vec(&wdv));

        // Each rank holds its token shard of q, k, v, dout; gather heads.
        let gather = |x: &[f64], nh: usize, kind: HeadKind| {
            let send: Vec<Vec<f64>> = (0..p)
                .map(|r| {
                    sp.seq_to_heads(kind, &rows(x, nh * d, sp.tokens(r)))
                        .unwrap()
                })
                .collect();
            all_to_all(&send, sp.block_len(kind))
        };
        let (gq, gk, gv, gd) = (
            gather(&q, h, HeadKind::Query),
            gather(&k, kv, HeadKind::KeyValue),
            gather(&v, kv, HeadKind::KeyValue),
            gather(&dout, h, HeadKind::Query),
        );
        let local = sp.local_heads();
        let (mut out, mut dq, mut dk, mut dv) = (vec![], vec![], vec![], vec![]);
        for r in 0..p {
            let (q, k, v, g) = (
                tensor(gq[r].clone(), t),
                tensor(gk[r].clone(), t),
                tensor(gv[r].clone(), t),
                tensor(gd[r].clone(), t),
            );
            let x = AttentionInputs::new(&q, &k, &v, &local, segs);
            out.push(to_f64_vec(&attention::forward(x).unwrap()));
            let (a, b, c) = attention::backward(&g, x).unwrap();
            dq.push(to_f64_vec(&a));
            dk.push(to_f64_vec(&b));
            dv.push(to_f64_vec(&c));
        }
        // Back to token shards; compare with the single-device rows of each shard.
        for (name, per_rank, kind, nh, want) in [
            ("out", &out, HeadKind::Query, h, &want_out),
            ("dq", &dq, HeadKind::Query, h, &wdq),
            ("dk", &dk, HeadKind::KeyValue, kv, &wdk),
            ("dv", &dv, HeadKind::KeyValue, kv, &wdv),
        ] {
            let recv = all_to_all(per_rank, sp.block_len(kind));
            for (r, buf) in recv.iter().enumerate() {
                let got = sp.heads_to_seq(kind, buf).unwrap();
                let err = max_diff(&got, &rows(want, nh * d, sp.tokens(r)));
                assert!(err < 1e-10, "P={p} H={h} KV={kv} {name} rank {r}: {err}");
            }
        }
    }
    assert!(
        crossings >= 3,
        "only {crossings} documents cross a shard boundary"
    );
}

/// Shard labels: together exactly the sequence's labels, with the label of a document's
/// token just before a shard boundary kept (its target lies on the next shard).
#[test]
fn shard_labels_partition_the_sequence_labels() {
    let mut rng = Rng::new(3);
    for _ in 0..20 {
        let p = 1 + rng.below(4);
        let t = p * (1 + rng.below(10));
        let seq = random_sequence(&mut rng, t);
        let heads = Heads {
            n_head: 12,
            n_kv_head: 12,
            head_dim: 2,
        };
        let sp = Ulysses::new(p, heads, t).unwrap();
        let (mut pos, mut tgt) = (vec![], vec![]);
        for r in 0..p {
            let (a, b) = sp.shard_labels(&seq, r);
            assert!(a.iter().all(|&x| sp.tokens(r).contains(&(x as usize))));
            pos.extend(a);
            tgt.extend(b);
        }
        assert_eq!(pos, seq.label_positions());
        assert_eq!(tgt, seq.label_targets());
        let cu = CuSeqlens::from_segments(seq.segments()).unwrap();
        for r in 1..p {
            let b = r * sp.chunk();
            if cu.doc_of(b - 1) == cu.doc_of(b) {
                let (a, targets) = sp.shard_labels(&seq, r - 1);
                assert_eq!(a.last(), Some(&(b as u32 - 1)));
                assert_eq!(targets.last(), Some(&seq.input_ids()[b]));
            }
        }
    }
}

#[test]
fn layouts_that_cannot_be_split_are_errors() {
    let heads = |h, kv| Heads {
        n_head: h,
        n_kv_head: kv,
        head_dim: 8,
    };
    assert!(Ulysses::new(4, heads(8, 2), 30).is_err()); // tokens
    assert!(Ulysses::new(3, heads(8, 2), 30).is_err()); // query heads
    assert!(Ulysses::new(4, heads(12, 6), 32).is_err()); // kv heads 6 vs 4 ranks
    assert!(Ulysses::new(0, heads(8, 2), 32).is_err());
    let sp = Ulysses::new(4, heads(8, 2), 32).unwrap();
    assert!(sp.seq_to_heads(HeadKind::Query, &[0.0f64; 7]).is_err());
    assert!(sp.heads_to_seq(HeadKind::KeyValue, &[0.0f64; 7]).is_err());
}

/// The sequence-parallel path of the model (token shard, exchanges around attention,
/// shard labels) on a group of one rank is the plain path, bit for bit: what the MPI
/// test (`dist_group`) compares with 2 and 4 ranks starts from the same arithmetic.
/// And a group that does not divide the world is an error, not a hang.
#[test]
fn sequence_parallel_path_on_one_rank_is_the_plain_path() {
    use prolong_train::dist::group::Solo;
    use prolong_train::dist::ulysses::SeqGroup;
    let mut rng = Rng::new(5);
    let cfg = common::tiny_config(false);
    let model = common::random_model(&cfg, &mut rng, candle_core::DType::F32);
    let ids = rng.tokens(24, cfg.vocab_size);
    let seq = PackedSequence::new(ids, &[[0, 7], [7, 9], [10, 24]], None).unwrap();
    let group = SeqGroup::new(&Solo, 1).unwrap();
    let (a, ga) = model.loss_and_grads_blocked(&seq, 5).unwrap();
    let (b, gb) = model.loss_and_grads_part(&seq, 5, Some(&group)).unwrap();
    assert_eq!(a, b);
    for ((name, x), (_, y)) in ga.named().iter().zip(gb.named().iter()) {
        assert_eq!(to_f64_vec(x), to_f64_vec(y), "{name}");
    }
    let e = SeqGroup::new(&Solo, 2).err().unwrap();
    assert!(
        e.to_string()
            .contains("sequence-parallel groups of 2 ranks in a world of 1"),
        "{e}"
    );
    let e = group.exchange(&[1.0, 2.0, 3.0], 2).unwrap_err();
    assert!(e.to_string().contains("all_to_all"), "{e}");
}
