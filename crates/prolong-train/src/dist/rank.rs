//! Rank discovery from the launcher's environment.
//!
//! torchrun (and most launchers built on it) set `RANK`, `WORLD_SIZE`, `LOCAL_RANK`;
//! Open MPI's `mpirun` sets `OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE`,
//! `OMPI_COMM_WORLD_LOCAL_RANK`; MPICH's and Intel MPI's set `PMI_RANK`, `PMI_SIZE`
//! (and `MPI_LOCALRANKID`); `srun` sets `SLURM_PROCID`, `SLURM_NTASKS`,
//! `SLURM_LOCALID`. The first set present wins, in that order: a torchrun or an
//! `mpirun` inside an `srun` step is its own world, and an `srun` that starts MPI ranks
//! directly sets the PMI names to the same values as its own. With none, the process
//! is the single rank of a world of one.

use super::{DistError, DistResult};

/// This process's place in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankInfo {
    /// Global rank, `0..world_size`.
    pub rank: usize,
    pub world_size: usize,
    /// Rank on this node: selects the GPU.
    pub local_rank: usize,
}

impl RankInfo {
    /// A world of one.
    pub const SINGLE: Self = Self {
        rank: 0,
        world_size: 1,
        local_rank: 0,
    };

    /// From the process environment.
    pub fn from_env() -> DistResult<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (the process environment in [`RankInfo::from_env`]).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> DistResult<Self> {
        const SETS: [[&str; 3]; 4] = [
            ["RANK", "WORLD_SIZE", "LOCAL_RANK"],
            [
                "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_SIZE",
                "OMPI_COMM_WORLD_LOCAL_RANK",
            ],
            ["PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"],
            ["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"],
        ];
        for [rank, world, local] in SETS {
            let Some(rank_value) = get(rank) else {
                continue;
            };
            let rank_n = parse(rank, &rank_value)?;
            let world_n = match get(world) {
                Some(v) => parse(world, &v)?,
                None => {
                    return Err(DistError::Env {
                        var: rank,
                        value: rank_value,
                        msg: format!("set without {world}"),
                    });
                }
            };
            if world_n == 0 || rank_n >= world_n {
                return Err(DistError::Env {
                    var: rank,
                    value: rank_value,
                    msg: format!("not below {world}={world_n}"),
                });
            }
            // A single-node launcher may leave the local rank out: then it is the rank.
            let local_n = match get(local) {
                Some(v) => parse(local, &v)?,
                None => rank_n,
            };
            return Ok(Self {
                rank: rank_n,
                world_size: world_n,
                local_rank: local_n,
            });
        }
        Ok(Self::SINGLE)
    }

    pub fn is_root(&self) -> bool {
        self.rank == 0
    }
}

fn parse(var: &'static str, value: &str) -> DistResult<usize> {
    value.trim().parse().map_err(|_| DistError::Env {
        var,
        value: value.to_owned(),
        msg: "not a non-negative integer".into(),
    })
}
