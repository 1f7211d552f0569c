//! The process group: the six collectives the trainer needs, behind one small
//! interface, on backends made by others.
//!
//! * [`Solo`] — a world of one: every collective is a copy or nothing. What a
//!   run without a launcher gets, and the reference the others are tested against.
//! * [`MpiGroup`] (feature `mpi`) — CPU ranks through MPI (rsmpi over OpenMPI):
//!   what makes every distributed test runnable on a machine without GPUs, and
//!   what CPU clusters use. Started by `mpirun` (or `prolong-train launch`).
//! * NCCL (feature `cuda`, `ops::cuda::nccl`) for CUDA tensors.
//!
//! Reductions are sums in f32 (the house rule: f32 accumulation in every
//! reduction, across ranks included). Gathers, all-to-all and broadcast move
//! bytes, so one implementation serves every element type; [`as_bytes`] and
//! [`as_bytes_mut`] view typed slices (f32, bf16 bits, token ids) as bytes.
//!
//! Every call checks its buffer sizes against the world before any byte moves,
//! so a layout mistake is one error on every rank rather than a hang in the
//! middle of a collective. A rank that dies (SIGKILL, out of memory) is not
//! something a collective can report: under `mpirun` the launcher ends the
//! whole job, and `prolong-train launch` does the same for its ranks.

use super::{DistError, DistResult};

/// The collectives, on one group of ranks. Each call is collective: every rank
/// of the group makes it, in the same order, with matching sizes.
pub trait ProcessGroup {
    /// This process's rank in the group, `0..size()`.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn size(&self) -> usize;

    /// Element-wise sum over the ranks, in place; every rank gets the sum.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()>;

    /// `send` is `size()` equal blocks; rank r receives the element-wise sum
    /// over the ranks of block r (`recv.len() * size() == send.len()`).
    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()>;

    /// Every rank's `send` (all the same length) concatenated in rank order
    /// into `recv` (`recv.len() == send.len() * size()`).
    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()>;

    /// Block r of `send` (`send_counts[r]` bytes, blocks back to back) goes to
    /// rank r; `recv` gets rank r's block for us at its place
    /// (`recv_counts[r]` bytes, back to back). Counts must agree pairwise: what
    /// rank a sends to b is what b expects from a.
    fn all_to_all(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> DistResult<()>;

    /// `root`'s `buf` copied into every rank's `buf` (same length everywhere).
    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> DistResult<()>;
}

/// A typed slice seen as its bytes (for the byte-moving collectives).
pub fn as_bytes<T: bytemuck::Pod>(values: &[T]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// A typed mutable slice seen as its bytes.
pub fn as_bytes_mut<T: bytemuck::Pod>(values: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(values)
}

/// The size checks every backend makes before moving a byte.
pub(crate) mod check {
    use super::{DistError, DistResult};

    fn layout(op: &str, msg: String) -> DistError {
        DistError::Layout(format!("{op}: {msg}"))
    }

    pub fn reduce_scatter(size: usize, send: usize, recv: usize) -> DistResult<()> {
        if recv.checked_mul(size) != Some(send) {
            return Err(layout(
                "reduce_scatter",
                format!("{send} elements sent is not {size} ranks x {recv} received"),
            ));
        }
        Ok(())
    }

    pub fn all_gather(size: usize, send: usize, recv: usize) -> DistResult<()> {
        if send.checked_mul(size) != Some(recv) {
            return Err(layout(
                "all_gather",
                format!("{recv} bytes received is not {size} ranks x {send} sent"),
            ));
        }
        Ok(())
    }

    pub fn all_to_all(
        size: usize,
        send: usize,
        send_counts: &[usize],
        recv: usize,
        recv_counts: &[usize],
    ) -> DistResult<()> {
        for (what, counts, len) in [("send", send_counts, send), ("recv", recv_counts, recv)] {
            if counts.len() != size {
                return Err(layout(
                    "all_to_all",
                    format!("{} {what} counts for {size} ranks", counts.len()),
                ));
            }
            let total = counts.iter().try_fold(0usize, |a, &c| a.checked_add(c));
            if total != Some(len) {
                return Err(layout(
                    "all_to_all",
                    format!("{what} counts add up to {total:?}, the buffer holds {len} bytes"),
                ));
            }
        }
        Ok(())
    }

    pub fn root(size: usize, root: usize) -> DistResult<()> {
        if root >= size {
            return Err(layout("broadcast", format!("root {root} of {size} ranks")));
        }
        Ok(())
    }
}

/// A world of one rank.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

impl ProcessGroup for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _buf: &mut [f32]) -> DistResult<()> {
        Ok(())
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        check::reduce_scatter(1, send.len(), recv.len())?;
        recv.copy_from_slice(send);
        Ok(())
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        check::all_gather(1, send.len(), recv.len())?;
        recv.copy_from_slice(send);
        Ok(())
    }

    fn all_to_all(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> DistResult<()> {
        check::all_to_all(1, send.len(), send_counts, recv.len(), recv_counts)?;
        recv.copy_from_slice(send);
        Ok(())
    }

    fn broadcast(&self, _buf: &mut [u8], root: usize) -> DistResult<()> {
        check::root(1, root)
    }

    fn barrier(&self) -> DistResult<()> {
        Ok(())
    }
}

/// Seconds spent inside collectives, shared between a [`Timed`] group and whoever
/// reads it (the trainer sums it per step for its communication share).
#[derive(Debug, Default, Clone)]
pub struct CommClock(std::rc::Rc<std::cell::Cell<f64>>);

impl CommClock {
    /// Seconds inside collectives so far.
    pub fn seconds(&self) -> f64 {
        self.0.get()
    }
}

/// A process group that times every collective into a [`CommClock`]. The time is
/// wall time inside the call: transfer and reduction, and also the wait for the
/// slowest rank to arrive (on CPU ranks, load imbalance shows up here too).
pub struct Timed {
    inner: Box<dyn ProcessGroup>,
    clock: CommClock,
}

impl Timed {
    pub fn new(inner: Box<dyn ProcessGroup>, clock: CommClock) -> Self {
        Self { inner, clock }
    }

    fn time<T>(&self, f: impl FnOnce(&dyn ProcessGroup) -> T) -> T {
        let t = std::time::Instant::now();
        let out = f(self.inner.as_ref());
        let c = &self.clock.0;
        c.set(c.get() + t.elapsed().as_secs_f64());
        out
    }
}

impl ProcessGroup for Timed {
    fn rank(&self) -> usize {
        self.inner.rank()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()> {
        self.time(|g| g.all_reduce_sum(buf))
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        self.time(|g| g.reduce_scatter_sum(send, recv))
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        self.time(|g| g.all_gather(send, recv))
    }

    fn all_to_all(
        &self,
        send: &[u8],
        send_counts: &[usize],
        recv: &mut [u8],
        recv_counts: &[usize],
    ) -> DistResult<()> {
        self.time(|g| g.all_to_all(send, send_counts, recv, recv_counts))
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
        self.time(|g| g.broadcast(buf, root))
    }

    fn barrier(&self) -> DistResult<()> {
        self.time(|g| g.barrier())
    }
}

#[cfg(feature = "mpi")]
pub use mpi_backend::MpiGroup;

#[cfg(feature = "mpi")]
mod mpi_backend {
    use mpi::collective::SystemOperation;
    use mpi::datatype::{Partition, PartitionMut};
    use mpi::environment::Universe;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::*;

    use super::{DistError, DistResult, ProcessGroup, check};

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

    impl ProcessGroup for MpiGroup {
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
            check::reduce_scatter(self.size(), send.len(), recv.len())?;
            if send.len() > i32::MAX as usize {
                return Err(DistError::Mpi {
                    op: "reduce_scatter",
                    msg: format!("{} elements is over MPI's 2^31 - 1", send.len()),
                });
            }
            self.world
                .reduce_scatter_block_into(send, recv, SystemOperation::sum());
            Ok(())
        }

        fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
            check::all_gather(self.size(), send.len(), recv.len())?;
            if recv.len() > i32::MAX as usize {
                return Err(DistError::Mpi {
                    op: "all_gather",
                    msg: format!("{} bytes is over MPI's 2^31 - 1", recv.len()),
                });
            }
            self.world.all_gather_into(send, recv);
            Ok(())
        }

        fn all_to_all(
            &self,
            send: &[u8],
            send_counts: &[usize],
            recv: &mut [u8],
            recv_counts: &[usize],
        ) -> DistResult<()> {
            check::all_to_all(
                self.size(),
                send.len(),
                send_counts,
                recv.len(),
                recv_counts,
            )?;
            let send_counts = Self::counts("all_to_all", send_counts)?;
            let recv_counts = Self::counts("all_to_all", recv_counts)?;
            let send_displs = Self::displacements(&send_counts)?;
            let recv_displs = Self::displacements(&recv_counts)?;
            let send = Partition::new(send, &send_counts[..], &send_displs[..]);
            let mut recv = PartitionMut::new(recv, &recv_counts[..], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&send, &mut recv);
            Ok(())
        }

        fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
            check::root(self.size(), root)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solo_collectives_are_copies() {
        let g = Solo;
        let mut v = vec![1.0f32, 2.0];
        g.all_reduce_sum(&mut v).unwrap();
        assert_eq!(v, [1.0, 2.0]);
        let mut r = vec![0.0f32; 2];
        g.reduce_scatter_sum(&v, &mut r).unwrap();
        assert_eq!(r, v);
        let mut bytes = vec![0u8; 8];
        g.all_gather(as_bytes(&v), &mut bytes).unwrap();
        assert_eq!(bytes, as_bytes(&v));
        let mut out = vec![0u8; 3];
        g.all_to_all(b"abc", &[3], &mut out, &[3]).unwrap();
        assert_eq!(&out, b"abc");
        g.broadcast(&mut out, 0).unwrap();
        g.barrier().unwrap();
    }

    #[test]
    fn sizes_are_checked_before_anything_moves() {
        let g = Solo;
        let mut r = vec![7.0f32; 3];
        let e = g.reduce_scatter_sum(&[1.0, 2.0], &mut r).unwrap_err();
        assert!(
            e.to_string().contains("2 elements sent is not 1 ranks x 3"),
            "{e}"
        );
        assert_eq!(r, [7.0; 3], "nothing written on a refused call");
        let e = g.all_gather(b"ab", &mut [0u8; 3]).unwrap_err();
        assert!(e.to_string().contains("all_gather"), "{e}");
        let e = g
            .all_to_all(b"ab", &[1, 1], &mut [0u8; 2], &[2])
            .unwrap_err();
        assert!(e.to_string().contains("2 send counts for 1 ranks"), "{e}");
        let e = g.all_to_all(b"ab", &[3], &mut [0u8; 2], &[2]).unwrap_err();
        assert!(
            e.to_string().contains("send counts add up to Some(3)"),
            "{e}"
        );
        let e = g.broadcast(&mut [0u8; 2], 1).unwrap_err();
        assert!(e.to_string().contains("root 1 of 1 ranks"), "{e}");
    }

    #[test]
    fn checks_agree_with_a_world_of_four() {
        assert!(check::reduce_scatter(4, 8, 2).is_ok());
        assert!(check::reduce_scatter(4, 8, 3).is_err());
        assert!(check::all_gather(4, 3, 12).is_ok());
        assert!(check::all_gather(4, 3, 11).is_err());
        assert!(check::all_to_all(4, 6, &[1, 2, 3, 0], 4, &[1, 1, 1, 1]).is_ok());
        assert!(check::all_to_all(4, 6, &[1, 2, 3, 0], 4, &[1, 1, 1]).is_err());
        assert!(check::all_to_all(4, usize::MAX, &[usize::MAX, 1, 0, 0], 0, &[0; 4]).is_err());
        assert!(check::root(4, 3).is_ok());
        assert!(check::root(4, 4).is_err());
    }
}
