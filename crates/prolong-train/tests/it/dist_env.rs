//! Rank discovery, the NCCL unique-id exchange through a shared file, and `cu_seqlens`.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use prolong_packed::CuSeqlens;
use prolong_train::PackedSequence;
use prolong_train::dist::DistError;
use prolong_train::dist::rank::RankInfo;
use prolong_train::dist::unique_id::share_unique_id;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn info(rank: usize, world_size: usize, local_rank: usize) -> RankInfo {
    RankInfo {
        rank,
        world_size,
        local_rank,
    }
}

#[test]
fn ranks_from_torchrun_then_slurm_then_single() {
    let torchrun = [("RANK", "5"), ("WORLD_SIZE", "16"), ("LOCAL_RANK", "1")];
    let slurm = [
        ("SLURM_PROCID", "9"),
        ("SLURM_NTASKS", "32"),
        ("SLURM_LOCALID", "3"),
    ];
    assert_eq!(
        RankInfo::from_vars(vars(&torchrun)).unwrap(),
        info(5, 16, 1)
    );
    assert_eq!(RankInfo::from_vars(vars(&slurm)).unwrap(), info(9, 32, 3));
    let both: Vec<_> = torchrun.iter().chain(&slurm).copied().collect();
    assert_eq!(RankInfo::from_vars(vars(&both)).unwrap(), info(5, 16, 1));
    assert_eq!(RankInfo::from_vars(vars(&[])).unwrap(), RankInfo::SINGLE);
    // No local rank: one node, local = global.
    let one_node = [("RANK", "2"), ("WORLD_SIZE", "4")];
    assert_eq!(RankInfo::from_vars(vars(&one_node)).unwrap(), info(2, 4, 2));
}

/// Open MPI's and MPICH's names; an `mpirun` inside an `srun` step is the MPI world,
/// and torchrun's names still win over both.
#[test]
fn ranks_from_mpi_launchers() {
    let ompi = [
        ("OMPI_COMM_WORLD_RANK", "3"),
        ("OMPI_COMM_WORLD_SIZE", "4"),
        ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
    ];
    let pmi = [
        ("PMI_RANK", "6"),
        ("PMI_SIZE", "8"),
        ("MPI_LOCALRANKID", "2"),
    ];
    let slurm = [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1")];
    assert_eq!(RankInfo::from_vars(vars(&ompi)).unwrap(), info(3, 4, 1));
    assert_eq!(RankInfo::from_vars(vars(&pmi)).unwrap(), info(6, 8, 2));
    let in_srun: Vec<_> = ompi.iter().chain(&slurm).copied().collect();
    assert_eq!(RankInfo::from_vars(vars(&in_srun)).unwrap(), info(3, 4, 1));
    let srun_pmi: Vec<_> = pmi.iter().chain(&slurm).copied().collect();
    assert_eq!(RankInfo::from_vars(vars(&srun_pmi)).unwrap(), info(6, 8, 2));
    let torchrun = [("RANK", "1"), ("WORLD_SIZE", "2")];
    let all: Vec<_> = torchrun.iter().chain(&ompi).chain(&pmi).copied().collect();
    assert_eq!(RankInfo::from_vars(vars(&all)).unwrap(), info(1, 2, 1));
    let bad = [("OMPI_COMM_WORLD_RANK", "4"), ("OMPI_COMM_WORLD_SIZE", "4")];
    match RankInfo::from_vars(vars(&bad)) {
        Err(DistError::Env { var, .. }) => assert_eq!(var, "OMPI_COMM_WORLD_RANK"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_rank_variables_are_named_errors() {
    for (pairs, var) in [
        (&[("RANK", "x"), ("WORLD_SIZE", "4")][..], "RANK"),
        (&[("RANK", "4"), ("WORLD_SIZE", "4")][..], "RANK"),
        (&[("RANK", "1")][..], "RANK"),
        (
            &[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "-2")][..],
            "SLURM_NTASKS",
        ),
    ] {
        match RankInfo::from_vars(vars(pairs)) {
            Err(DistError::Env { var: v, .. }) => assert_eq!(v, var, "{pairs:?}"),
            other => panic!("{pairs:?}: {other:?}"),
        }
    }
}

/// Rank 0 publishes a fake id while three other ranks (threads) wait for it; a stale
/// file of another run is not taken for it.
#[test]
fn unique_id_reaches_every_rank_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nccl-id");
    std::fs::write(&path, [b"old-run\n".as_slice(), &[9u8; 16]].concat()).unwrap();
    let id: Vec<u8> = (0..16).collect();
    let waiters: Vec<_> = (1..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                share_unique_id(&path, false, "job-42", 16, Duration::from_secs(20), || {
                    unreachable!("only rank 0 makes the id")
                })
            })
        })
        .collect();
    // Rank 0 publishes whenever it gets here: a waiter that started earlier polls past
    // the stale file, a later one finds the new id at once; either way it gets `id`.
    let root = share_unique_id(&path, true, "job-42", 16, Duration::ZERO, || id.clone());
    assert_eq!(root.unwrap(), id);
    for w in waiters {
        assert_eq!(w.join().unwrap().unwrap(), id);
    }
}

#[test]
fn unique_id_wait_times_out_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never");
    let err =
        share_unique_id(&path, false, "t", 8, Duration::from_millis(120), Vec::new).unwrap_err();
    assert!(matches!(err, DistError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("never"));
    // rank 0 with an id of the wrong size
    assert!(share_unique_id(&path, true, "t", 8, Duration::ZERO, || vec![1; 3]).is_err());
}

/// `cu_seqlens` from `indices`: gaps and one-token pieces are one-token documents (as the
/// CPU attention treats them), empty pieces vanish.
#[test]
fn cu_seqlens_from_indices() {
    let seq =
        PackedSequence::new((0..12).collect(), &[[0, 4], [4, 4], [5, 6], [6, 10]], None).unwrap();
    let cu = CuSeqlens::from_segments(seq.segments()).unwrap();
    assert_eq!(cu.cu, vec![0, 4, 5, 6, 10, 11, 12]);
    assert_eq!(cu.max_seqlen, 4);
    assert_eq!((cu.num_docs(), cu.total()), (6, 12));
    assert_eq!(
        (0..12).map(|t| cu.doc_of(t)).collect::<Vec<_>>(),
        [0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 4, 5]
    );
    let bad: [Range<usize>; 2] = [0..3, 4..6];
    assert!(CuSeqlens::from_segments(&bad).is_err());
}

/// Tiles cover every token exactly once, never cross a document, and hold at most
/// `block` tokens.
#[test]
fn attention_tiles_cover_each_document() {
    let segments = [0..1, 1..70, 70..71, 71..135, 135..200];
    let cu = CuSeqlens::from_segments(&segments).unwrap();
    for block in [1, 7, 32, 64, 1000] {
        let tiles = cu.tiles(block);
        let mut seen = vec![0; 200];
        for pair in tiles.chunks(2) {
            let (doc, start) = (pair[0] as usize, pair[1] as usize);
            let end = (start + block).min(cu.cu[doc + 1] as usize);
            assert!(segments[doc].contains(&start));
            (start..end).for_each(|t| seen[t] += 1);
        }
        assert!(seen.iter().all(|&n| n == 1), "block {block}");
        let want: usize = segments.iter().map(|s| s.len().div_ceil(block)).sum();
        assert_eq!(tiles.len(), 2 * want);
    }
}
