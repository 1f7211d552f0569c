//! The process group's collectives over MPI ranks.

use super::{mpirun, mpirun_available};
use std::process::Command;

/// What rank `rank` contributes: multiples of 1/4 below 32, so that every sum
/// over a few ranks is exact in f32 whatever order MPI adds in.
fn values(rank: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((rank * 31 + i * 7) % 127) as f32 * 0.25)
        .collect()
}

/// Bytes rank `from` sends to rank `to` in the all-to-all: `from + 2 to + 1` of them
/// (uneven on purpose; rank 0 to rank 0 is one byte).
fn block(from: usize, to: usize) -> Vec<u8> {
    vec![(from * 16 + to) as u8; from + 2 * to + 1]
}

/// One rank's part: run under `mpirun` by the tests below.
#[test]
#[ignore = "one MPI rank's body: the tests below run it under mpirun"]
fn mpi_rank_body() {
    use prolong_train::dist::group::{Blocks, MpiGroup, ProcessGroup, as_bytes, as_bytes_mut};

    let g = MpiGroup::init().unwrap();
    let (r, n) = (g.rank(), g.size());
    println!("rank {r} pid {}", std::process::id());
    g.barrier().unwrap();
    if std::env::var("PROLONG_TEST_KILL_RANK").is_ok_and(|k| k == r.to_string()) {
        // Dies between two collectives; the others are already in the next one.
        let _ = Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // SIGKILL has landed before `kill` returns; nothing below runs.
        unreachable!("rank {r} survived SIGKILL");
    }

    // all-reduce, long enough to take MPI's large-message path.
    let len = 100_003;
    let mut v = values(r, len);
    g.all_reduce_sum(&mut v).unwrap();
    let all: Vec<Vec<f32>> = (0..n).map(|q| values(q, len)).collect();
    let sum: Vec<f32> = (0..len).map(|i| all.iter().map(|a| a[i]).sum()).collect();
    assert_eq!(v, sum, "all_reduce_sum");

    // reduce-scatter: rank r gets block r of the sum.
    let per = 1_001;
    let send = values(r, per * n);
    let mut recv = vec![0f32; per];
    g.reduce_scatter_sum(&send, &mut recv).unwrap();
    let full: Vec<f32> = (0..per * n)
        .map(|i| (0..n).map(|q| values(q, per * n)[i]).sum())
        .collect();
    assert_eq!(recv, full[r * per..(r + 1) * per], "reduce_scatter_sum");

    // all-gather of typed values (bf16 bits here) through the byte interface.
    let mine: Vec<u16> = (0..5).map(|i| (r * 100 + i) as u16).collect();
    let mut gathered = vec![0u16; 5 * n];
    g.all_gather(as_bytes(&mine), as_bytes_mut(&mut gathered))
        .unwrap();
    let expect: Vec<u16> = (0..n)
        .flat_map(|q| (0..5).map(move |i| (q * 100 + i) as u16))
        .collect();
    assert_eq!(gathered, expect, "all_gather");

    // all-to-all with uneven blocks.
    let send: Vec<u8> = (0..n).flat_map(|to| block(r, to)).collect();
    let send_counts: Vec<usize> = (0..n).map(|to| block(r, to).len()).collect();
    let recv_counts: Vec<usize> = (0..n).map(|from| block(from, r).len()).collect();
    let mut recv = vec![0u8; recv_counts.iter().sum()];
    g.all_to_all(
        Blocks::new(&send, &send_counts),
        Blocks::new(&mut recv, &recv_counts),
    )
    .unwrap();
    let expect: Vec<u8> = (0..n).flat_map(|from| block(from, r)).collect();
    assert_eq!(recv, expect, "all_to_all");

    // broadcast from the last rank.
    let mut buf = if r == n - 1 {
        b"from the last rank".to_vec()
    } else {
        vec![0u8; 18]
    };
    g.broadcast(&mut buf, n - 1).unwrap();
    assert_eq!(&buf, b"from the last rank", "broadcast");

    // A size mistake is an error on the rank that made it, before anything moves.
    assert!(g.all_gather(b"ab", &mut [0u8; 3]).is_err());

    g.barrier().unwrap();
    println!("rank {r} of {n}: collectives ok");
}

/// Runs `mpi_rank_body` on `n` ranks: whether the job succeeded, and its output.
fn run_ranks(n: usize, kill_rank: Option<usize>) -> (bool, String) {
    let mut cmd = mpirun();
    cmd.args(["-np", &n.to_string()]);
    if let Some(k) = kill_rank {
        cmd.env("PROLONG_TEST_KILL_RANK", k.to_string());
        cmd.args(["-x", "PROLONG_TEST_KILL_RANK"]);
    }
    cmd.arg(std::env::current_exe().unwrap()).args([
        "--ignored",
        "--exact",
        "dist_group::collectives::mpi_rank_body",
        "--nocapture",
        "--test-threads=1",
    ]);
    let session = tempfile::tempdir().unwrap();
    cmd.env("TMPDIR", session.path());
    // Open MPI ends the whole job when a rank dies, so waiting needs no time limit.
    let out = cmd.output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let status = out.status;
    (status.success(), text)
}

#[test]
fn collectives_over_two_and_four_mpi_ranks() {
    if !mpirun_available("collectives_over_two_and_four_mpi_ranks") {
        return;
    }
    for n in [2, 4] {
        let (ok, out) = run_ranks(n, None);
        assert!(ok, "{n} ranks:\n{out}");
        for r in 0..n {
            assert!(
                out.contains(&format!("rank {r} of {n}: collectives ok")),
                "rank {r} of {n}:\n{out}"
            );
        }
    }
}

/// A rank killed with SIGKILL between collectives: the job ends with an error
/// instead of the others waiting for it forever, and no rank is left running.
#[test]
fn a_killed_rank_ends_the_whole_job() {
    if !mpirun_available("a_killed_rank_ends_the_whole_job") {
        return;
    }
    let (ok, out) = run_ranks(3, Some(1));
    assert!(!ok, "the job succeeded with a dead rank:\n{out}");
    assert!(!out.contains("collectives ok"), "{out}");
    let pids: Vec<u32> = out
        .lines()
        .filter_map(|l| {
            // libtest's "test mpi_rank_body ... " may stand before it on the line.
            let at = l.find("rank ")?;
            l[at..].split_once(" pid ")?.1.trim().parse().ok()
        })
        .collect();
    assert_eq!(pids.len(), 3, "every rank started:\n{out}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "rank process {pid} still running after the job ended"
        );
    }
}
