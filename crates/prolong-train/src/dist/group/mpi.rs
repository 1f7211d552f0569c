//! CPU ranks through MPI (rsmpi over Open MPI): the backend of every
//! distributed test here and of CPU clusters.

use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::{Blocks, Collectives, DistError, DistResult};

/// MPI counts are C ints: larger buffers go in pieces of this many elements.
const PIECE: usize = 1 << 30;

/// The MPI world as a process group. MPI is initialised once per process
/// ([`MpiGroup::init`]) and finalised when this is dropped.
pub struct MpiGroup {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl MpiGroup {
    /// Initialises MPI (single-threaded use: only the thread that calls
    /// this makes MPI calls) and returns its world. Run outside `mpirun`,
    /// it is a world of one.
    pub fn init() -> DistResult<Self> {
        let universe = mpi::initialize().ok_or_else(|| DistError::Mpi {
            op: "init",
            msg: "MPI was already initialised in this process".into(),
        })?;
        Ok(Self {
            world: universe.world(),
            _universe: universe,
        })
    }

    fn counts(op: &'static str, counts: &[usize]) -> DistResult<Vec<mpi::Count>> {
        counts
            .iter()
            .map(|&c| {
                mpi::Count::try_from(c).map_err(|_| DistError::Mpi {
                    op,
                    msg: format!("a block of {c} bytes is over MPI's 2^31 - 1"),
                })
            })
            .collect()
    }

    fn displacements(counts: &[mpi::Count]) -> DistResult<Vec<mpi::Count>> {
        let mut at: mpi::Count = 0;
        counts
            .iter()
            .map(|&c| {
                let here = at;
                at = at.checked_add(c).ok_or_else(|| DistError::Mpi {
                    op: "all_to_all",
                    msg: "buffer over MPI's 2^31 - 1 bytes".into(),
                })?;
                Ok(here)
            })
            .collect()
    }
}

impl Collectives for MpiGroup {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()> {
        // rsmpi has no in-place form: each piece goes through a copy.
        let mut send = Vec::with_capacity(buf.len().min(PIECE));
        for piece in buf.chunks_mut(PIECE) {
            send.clear();
            send.extend_from_slice(piece);
            self.world
                .all_reduce_into(&send[..], piece, SystemOperation::sum());
        }
        Ok(())
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        within_count("reduce_scatter", send.len(), "elements")?;
        self.world
            .reduce_scatter_block_into(send, recv, SystemOperation::sum());
        Ok(())
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        within_count("all_gather", recv.len(), "bytes")?;
        self.world.all_gather_into(send, recv);
        Ok(())
    }

    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        let send_counts = Self::counts("all_to_all", send.counts)?;
        let recv_counts = Self::counts("all_to_all", recv.counts)?;
        let send_displs = Self::displacements(&send_counts)?;
        let recv_displs = Self::displacements(&recv_counts)?;
        let send = Partition::new(send.buf, &send_counts[..], &send_displs[..]);
        let mut recv = PartitionMut::new(recv.buf, &recv_counts[..], &recv_displs[..]);
        self.world.all_to_all_varcount_into(&send, &mut recv);
        Ok(())
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
        let root = self.world.process_at_rank(root as mpi::Rank);
        for piece in buf.chunks_mut(PIECE) {
            root.broadcast_into(piece);
        }
        Ok(())
    }

    fn barrier(&self) -> DistResult<()> {
        self.world.barrier();
        Ok(())
    }
}

/// MPI counts are C ints: `n` of `what` in one call must be at most 2^31 - 1.
fn within_count(op: &'static str, n: usize, what: &str) -> DistResult<()> {
    if n > i32::MAX as usize {
        return Err(DistError::Mpi {
            op,
            msg: format!("{n} {what} is over MPI's 2^31 - 1"),
        });
    }
    Ok(())
}
