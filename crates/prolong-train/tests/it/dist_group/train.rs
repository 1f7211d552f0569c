//! Data and sequence parallelism over MPI ranks against one rank with the same global
//! batch.

use super::{
    assert_close, launch_train, mpi_test_dir, result, sharded_recipe, tiny_recipe, train_alone,
    util,
};

/// Data parallelism in each shard mode: 2 and 4 MPI ranks, each reading and training
/// its share of every step, give one rank's run with the same global batch. Not bit
/// for bit: the ranks' f32 gradient sums are added in another order (`none`: per rank,
/// then all-reduced; `grad_op`: per rank, then reduce-scattered; `full`: each
/// micro-batch reduce-scattered, then accumulated), and the sharded modes' global norm
/// sums squares in f64 per shard where one rank sums rows in f32: ulps per element,
/// which six AdamW steps carry into the weights. So in every mode losses and gradient
/// norms must agree within 1e-5 relative and every weight tensor within 1e-5 of its
/// norm (measured: about 1e-7).
#[test]
fn data_parallel_ranks_train_as_one_rank() {
    let Some(tmp) = mpi_test_dir("data_parallel_ranks_train_as_one_rank") else {
        return;
    };
    let one = tiny_recipe(tmp.path(), "one");
    train_alone(&["--quiet"], &one);
    let one = result(&tmp.path().join("one"));
    assert_eq!(one.0.len(), 6);
    for mode in ["none", "grad_op", "full"] {
        for n in [2, 4] {
            let name = format!("{mode}{n}");
            let cfg = sharded_recipe(tmp.path(), &name, mode, 0);
            let o = launch_train(n, false, &cfg);
            assert!(o.status.success(), "{mode}, {n} ranks: {o:?}");
            // One summary, from rank 0.
            assert_eq!(
                String::from_utf8_lossy(&o.stdout)
                    .matches("6 steps")
                    .count(),
                1,
                "{o:?}"
            );
            // The sharded modes write their optimizer state as per-rank shards.
            let index = tmp.path().join(&name).join("final/optimizer/index.json");
            if mode == "none" {
                assert!(!index.exists());
            } else {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
                assert_eq!(v["world"], n, "{mode}");
            }
            assert_close(
                &one,
                &result(&tmp.path().join(&name)),
                &format!("{mode}, {n} ranks"),
            );
        }
    }
    // A step that does not divide over the ranks is refused, on every rank.
    let cfg = tiny_recipe(tmp.path(), "ranks3");
    let o = launch_train(3, false, &cfg);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "4 micro-batches per step (tokens_per_step / seq_len) do not divide over 3 data-parallel ranks"
        ),
        "{o:?}"
    );
}

/// Sequences of `len` tokens cut into four documents, `q = len/4`: `[0, a)`, `[a, q)`
/// ending where the second of 4 shards starts (the label of token `q - 1` must not
/// exist), `[q, b)` across the middle (the boundary of 2 and 4 shards: token `len/2 - 1`
/// predicts the next shard's first token) and `[b, len)` across `3q`.
fn sequences_crossing_shards(n: usize, len: usize, vocab: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = prolong_rng::SplitMix64::new(11);
    let q = len as u32 / 4;
    (0..n)
        .map(|_| {
            let ids: Vec<u32> = (0..len).map(|_| rng.below(vocab) as u32).collect();
            let a = 1 + rng.below(q as u64 - 2) as u32;
            let b = 2 * q + 1 + rng.below(q as u64 - 2) as u32;
            (ids, vec![0, a, a, q, q, b, b, len as u32])
        })
        .collect()
}

/// Ulysses sequence parallelism (`[parallel] sequence`): each sequence split over 2 or
/// 4 ranks (attention over all tokens of a head shard, kv heads one per rank at 2 and
/// replicated at 4: the tiny model has 4 query and 2 kv heads), and 2 data-parallel
/// groups of 2 SP ranks, equal one rank with the same global batch (4 sequences a
/// step, each with documents crossing the shard boundaries). Same tolerance as data
/// parallelism and for the same reason: the math is one rank's, only the order of f32
/// sums changes (the parameter gradients are summed over the shards, and the token
/// shards change the blocking of the embedding and head gradients); nothing is
/// approximated, so an error in the layout (a document split at a shard, a position or
/// label off by one at a boundary) moves the losses by far more than 1e-5. DP × SP =
/// 2 × 2 also runs with sharded state (`full` and `grad_op`), within the same tolerance.
#[test]
fn sequence_parallel_ranks_train_as_one_rank() {
    let Some(tmp) = mpi_test_dir("sequence_parallel_ranks_train_as_one_rank") else {
        return;
    };
    let data = tmp.path().join("data");
    util::write_packed(&data, &sequences_crossing_shards(40, 128, 64));
    let recipe_sharded = |name: &str, sp: usize, shard: &str| {
        let text = util::recipe(&data, &tmp.path().join(name), 128, 4, 6, 0, 64, 3e-3);
        util::write(
            &tmp.path().join(format!("{name}.toml")),
            &format!("{text}\n[parallel]\nsequence = {sp}\nshard = \"{shard}\"\n"),
        )
    };
    let recipe = |name: &str, sp: usize| recipe_sharded(name, sp, "none");
    train_alone(&["--quiet"], &recipe("one", 1));
    let one = result(&tmp.path().join("one"));
    assert_eq!(one.0.len(), 6);
    for (ranks, sp) in [(2, 2), (4, 4), (4, 2)] {
        let name = format!("sp{sp}of{ranks}");
        let o = launch_train(ranks, false, &recipe(&name, sp));
        assert!(o.status.success(), "{name}: {o:?}");
        assert_close(&one, &result(&tmp.path().join(&name)), &name);
    }
    // SP composed with sharded state: the SP ranks' gradients are reduce-scattered
    // like any other rank's (`full`: unit by unit, gathered one unit at a time).
    for shard in ["full", "grad_op"] {
        let name = format!("sp2of4{shard}");
        let o = launch_train(4, false, &recipe_sharded(&name, 2, shard));
        assert!(o.status.success(), "{name}: {o:?}");
        assert_close(&one, &result(&tmp.path().join(&name)), &name);
    }
    // An SP group that does not divide the world is refused, on every rank.
    let o = launch_train(2, false, &recipe("sp4of2", 4));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("parallel.sequence = 4 does not divide the 2 ranks"),
        "{o:?}"
    );
}
