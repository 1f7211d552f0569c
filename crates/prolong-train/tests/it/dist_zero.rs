//! ZeRO-1 shards of the flat parameter vector.

use crate::common::Rng;
use prolong_train::dist::zero::{UnitLayout, ZeroLayout};

/// Every element of every parameter is owned by exactly one rank, at consistent
/// offsets; shards are equal and aligned; ranks' owned parts are in rank order.
#[test]
fn shards_cover_every_element_once() {
    let mut rng = Rng::new(11);
    for _ in 0..200 {
        let numels: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(50)).collect();
        let world = 1 + rng.below(9);
        let align = [1, 4, 64][rng.below(3)];
        let z = ZeroLayout::new(&numels, world, align).unwrap();
        let numel: usize = numels.iter().sum();
        assert_eq!(z.numel(), numel);
        assert_eq!(z.shard_len() % align, 0);
        assert!(z.padded_len() >= numel && z.padded_len() - numel < world * align + align);
        let mut owner = vec![None; numel];
        for rank in 0..world {
            let own = z.owned(rank);
            assert!(own.len() <= z.shard_len());
            let mut covered = 0;
            for piece in z.pieces(rank) {
                assert_eq!(piece.in_param.len(), piece.in_shard.len());
                assert!(piece.in_param.end <= numels[piece.param]);
                let flat = z.param_ranges()[piece.param].start + piece.in_param.start;
                assert_eq!(flat, rank * z.shard_len() + piece.in_shard.start);
                for (i, slot) in owner[flat..flat + piece.in_param.len()]
                    .iter_mut()
                    .enumerate()
                {
                    assert_eq!(*slot, None, "element {} owned twice", flat + i);
                    *slot = Some(rank);
                }
                covered += piece.in_param.len();
            }
            assert_eq!(covered, own.len());
        }
        assert!(owner.iter().all(Option::is_some), "{numels:?} over {world}");
        assert!(owner.windows(2).all(|w| w[0] <= w[1]));
    }
}

/// A large model's shards are balanced: at most one alignment unit apart, except the last.
#[test]
fn shards_of_a_large_vector_are_balanced() {
    let numels = [128_256 * 2048, 2048, 2048 * 8192, 8192 * 2048, 2048];
    let z = ZeroLayout::new(&numels, 8, 64).unwrap();
    let lens: Vec<usize> = (0..8).map(|r| z.owned(r).len()).collect();
    assert!(lens[..7].iter().all(|&l| l == z.shard_len()));
    assert!(z.shard_len() - lens[7] < 8 * 64);
    // The same inputs give the same layout.
    assert_eq!(z, ZeroLayout::new(&numels, 8, 64).unwrap());
}

#[test]
fn zero_world_is_an_error() {
    assert!(ZeroLayout::new(&[10], 0, 1).is_err());
    assert!(ZeroLayout::new(&[10], 2, 0).is_err());
}

/// FSDP's units: every element of every parameter is owned by exactly one rank, once;
/// a rank's local shard is its shard of each unit end to end (each unit's shards equal,
/// so a unit's gather and reduce-scatter move equal counts); units that do not cover
/// the parameters in order are refused.
#[test]
fn unit_shards_cover_every_element_once() {
    let mut rng = Rng::new(5);
    for _ in 0..200 {
        let numels: Vec<usize> = (0..1 + rng.below(8)).map(|_| rng.below(50)).collect();
        let mut cuts = vec![0];
        for i in 1..numels.len() {
            if rng.below(2) == 0 {
                cuts.push(i);
            }
        }
        cuts.push(numels.len());
        let units: Vec<_> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        let world = 1 + rng.below(5);
        let z = UnitLayout::new(&numels, &units, world, 4).unwrap();
        assert_eq!(z.numel(), numels.iter().sum::<usize>());
        let mut seen: Vec<Vec<bool>> = numels.iter().map(|&n| vec![false; n]).collect();
        for rank in 0..world {
            for p in z.pieces(rank) {
                let u = z
                    .units()
                    .iter()
                    .find(|u| u.params.contains(&p.param))
                    .unwrap();
                let local = u.zero.pieces(rank);
                let q = local
                    .iter()
                    .find(|q| u.params.start + q.param == p.param)
                    .unwrap();
                assert_eq!(p.in_shard.start, u.offset + q.in_shard.start);
                assert!(p.in_shard.end <= u.offset + u.zero.shard_len());
                assert!(p.in_shard.end <= z.shard_len());
                for e in p.in_param.clone() {
                    assert!(!seen[p.param][e], "element {e} of {} owned twice", p.param);
                    seen[p.param][e] = true;
                }
            }
        }
        assert!(
            seen.iter().flatten().all(|&b| b),
            "{numels:?} {units:?} over {world}"
        );
    }
    assert!(UnitLayout::new(&[1, 2, 3], &[0..1, 2..3], 2, 1).is_err());
    assert!(UnitLayout::new(&[1, 2, 3], &[0..1, 1..2], 2, 1).is_err());
}
