//! The process group: the six collectives the trainer needs, behind one small
//! interface, on backends made by others.
//!
//! * [`Solo`] — a world of one: every collective is a copy or nothing. What a
//!   run without a launcher gets, and the reference the others are tested against.
//! * `MpiGroup` (feature `mpi`) — CPU ranks through MPI (rsmpi over OpenMPI):
//!   what makes every distributed test runnable on a machine without GPUs, and
//!   what CPU clusters use. Started by `mpirun` (or `prolong-train launch`).
//! * `NcclGroup` (feature `cuda`) — GPU ranks through NCCL (`dist::nccl`),
//!   started by `prolong-train launch --backend env`, torchrun or srun.
//!
//! [`Backend::select`] picks one from the device and the world size.
//!
//! Reductions are sums in f32 (the house rule: f32 accumulation in every
//! reduction, across ranks included). Gathers, all-to-all and broadcast move
//! bytes, so one implementation serves every element type; [`as_bytes`] and
//! [`as_bytes_mut`] view typed slices (f32, bf16 bits, token ids) as bytes.
//!
//! Every call checks its buffer sizes against the world before any byte moves
//! (once, in [`ProcessGroup`]'s implementation over a backend's [`Collectives`]),
//! so a layout mistake is one error on every rank rather than a hang in the
//! middle of a collective. A rank that dies (SIGKILL, out of memory) is not
//! something a collective can report: under `mpirun` the launcher ends the
//! whole job, and `prolong-train launch` does the same for its ranks.

use candle_core::Tensor;

use super::{DistError, DistResult};

/// The collectives, on one group of ranks. Each call is collective: every rank
/// of the group makes it, in the same order, with matching sizes.
///
/// Backends implement [`Collectives`] (the transfers); this trait checks the sizes
/// first, for every backend alike ([`Timed`], a wrapper, forwards to a checked group).
pub trait ProcessGroup {
    /// This process's rank in the group, `0..size()`.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn size(&self) -> usize;

    /// Element-wise sum over the ranks, in place; every rank gets the sum.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()>;

    /// The sum over the ranks of the f32 tensor `t` (every rank the same shape) as a
    /// new tensor on `t`'s device, when this backend can sum it there without the
    /// host (NCCL, `t` on its GPU); `None` otherwise, and the caller stages it through
    /// [`all_reduce_sum`](Self::all_reduce_sum). Collective either way: the answer
    /// depends only on the backend and the device, the same on every rank.
    fn all_reduce_sum_on_device(&self, t: &Tensor) -> DistResult<Option<Tensor>>;

    /// `send` is `size()` equal blocks; rank r receives the element-wise sum
    /// over the ranks of block r (`recv.len() * size() == send.len()`).
    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()>;

    /// Every rank's `send` (all the same length) concatenated in rank order
    /// into `recv` (`recv.len() == send.len() * size()`).
    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()>;

    /// Block r of `send` goes to rank r; block r of `recv` is rank r's block for
    /// us. Counts must agree pairwise: what rank a sends to b is what b expects
    /// from a (a rank cannot check that alone; each side's counts are checked
    /// against the world and its buffer).
    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()>;

    /// `root`'s `buf` copied into every rank's `buf` (same length everywhere).
    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> DistResult<()>;
}

/// What a backend implements: the transfers of [`ProcessGroup`]'s collectives on
/// buffers whose sizes have been checked against the world (every `recv` has the
/// length its `send` and the world call for, `root < size()`), so no backend repeats
/// the checks and none can forget one.
pub trait Collectives {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()>;
    /// Host backends have no device path.
    fn all_reduce_sum_on_device(&self, _t: &Tensor) -> DistResult<Option<Tensor>> {
        Ok(None)
    }
    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()>;
    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()>;
    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()>;
    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()>;
    fn barrier(&self) -> DistResult<()>;
}

impl<C: Collectives> ProcessGroup for C {
    fn rank(&self) -> usize {
        Collectives::rank(self)
    }

    fn size(&self) -> usize {
        Collectives::size(self)
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()> {
        Collectives::all_reduce_sum(self, buf)
    }

    fn all_reduce_sum_on_device(&self, t: &Tensor) -> DistResult<Option<Tensor>> {
        Collectives::all_reduce_sum_on_device(self, t)
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        check::reduce_scatter(Collectives::size(self), send.len(), recv.len())?;
        Collectives::reduce_scatter_sum(self, send, recv)
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        check::all_gather(Collectives::size(self), send.len(), recv.len())?;
        Collectives::all_gather(self, send, recv)
    }

    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        let size = Collectives::size(self);
        check::blocks(size, "send", send.buf.len(), send.counts)?;
        check::blocks(size, "recv", recv.buf.len(), recv.counts)?;
        Collectives::all_to_all(self, send, recv)
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
        check::root(Collectives::size(self), root)?;
        Collectives::broadcast(self, buf, root)
    }

    fn barrier(&self) -> DistResult<()> {
        Collectives::barrier(self)
    }
}

/// Which backend a run's ranks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One rank: no collective moves anything ([`Solo`]).
    Solo,
    /// CPU ranks: MPI (feature `mpi`).
    Mpi,
    /// GPU ranks: NCCL (feature `cuda`).
    Nccl,
}

impl Backend {
    /// The backend of `world` ranks whose tensors live on a GPU (`on_gpu`) or on the
    /// CPU: NCCL for GPU ranks, MPI for CPU ranks, nothing for a world of one.
    pub fn select(on_gpu: bool, world: usize) -> Self {
        match (world, on_gpu) {
            (0 | 1, _) => Self::Solo,
            (_, true) => Self::Nccl,
            (_, false) => Self::Mpi,
        }
    }
}

/// Blocks back to back in one buffer, block r `counts[r]` elements long: what an
/// all-to-all sends (block r to rank r) or receives (block r from rank r). `B` is the
/// buffer: `&[u8]` to send and `&mut [u8]` to receive through [`ProcessGroup`], device
/// views through NCCL's communicator (`dist::nccl`).
#[derive(Debug)]
pub struct Blocks<'c, B> {
    pub buf: B,
    pub counts: &'c [usize],
}

impl<'c, B> Blocks<'c, B> {
    pub fn new(buf: B, counts: &'c [usize]) -> Self {
        Self { buf, counts }
    }
}

/// A typed slice seen as its bytes (for the byte-moving collectives).
pub fn as_bytes<T: bytemuck::Pod>(values: &[T]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// A typed mutable slice seen as its bytes.
pub fn as_bytes_mut<T: bytemuck::Pod>(values: &mut [T]) -> &mut [u8] {
    bytemuck::cast_slice_mut(values)
}

/// The size checks every backend gets before moving a byte (through
/// [`ProcessGroup`]; the NCCL wrappers of `dist::nccl` make them on device
/// buffers too). Sizes are in elements of the buffers' type.
pub(crate) mod check {
    use super::{DistError, DistResult};

    fn layout(op: &str, msg: String) -> DistError {
        DistError::Layout(format!("{op}: {msg}"))
    }

    pub fn reduce_scatter(size: usize, send: usize, recv: usize) -> DistResult<()> {
        whole_of_ranks("reduce_scatter", size, (send, "sent"), (recv, "received"))
    }

    pub fn all_gather(size: usize, send: usize, recv: usize) -> DistResult<()> {
        whole_of_ranks("all_gather", size, (recv, "received"), (send, "sent"))
    }

    /// One buffer holds `size` ranks' worth of the other (`whole` elements = `size`
    /// x `part`): reduce-scatter's send, of its receive; all-gather's receive, of its
    /// send (each collective is the other's transpose).
    fn whole_of_ranks(
        op: &str,
        size: usize,
        (whole, whole_is): (usize, &str),
        (part, part_is): (usize, &str),
    ) -> DistResult<()> {
        if part.checked_mul(size) != Some(whole) {
            return Err(layout(
                op,
                format!("{whole} elements {whole_is} is not {size} ranks x {part} {part_is}"),
            ));
        }
        Ok(())
    }

    /// One side of an all-to-all ([`Blocks`](super::Blocks); `what`: "send" or
    /// "recv"): a count per rank, adding up to `len`, the buffer's.
    pub fn blocks(size: usize, what: &str, len: usize, counts: &[usize]) -> DistResult<()> {
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
                format!("{what} counts add up to {total:?}, the buffer holds {len} elements"),
            ));
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

impl Collectives for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _buf: &mut [f32]) -> DistResult<()> {
        Ok(())
    }

    // With one rank the checks made `recv` as long as `send`.
    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        recv.copy_from_slice(send);
        Ok(())
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        recv.copy_from_slice(send);
        Ok(())
    }

    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        recv.buf.copy_from_slice(send.buf);
        Ok(())
    }

    fn broadcast(&self, _buf: &mut [u8], _root: usize) -> DistResult<()> {
        Ok(())
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

    fn all_reduce_sum_on_device(&self, t: &Tensor) -> DistResult<Option<Tensor>> {
        self.time(|g| g.all_reduce_sum_on_device(t))
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        self.time(|g| g.reduce_scatter_sum(send, recv))
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        self.time(|g| g.all_gather(send, recv))
    }

    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        self.time(|g| g.all_to_all(send, recv))
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
        self.time(|g| g.broadcast(buf, root))
    }

    fn barrier(&self) -> DistResult<()> {
        self.time(|g| g.barrier())
    }
}

#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "mpi")]
pub use self::mpi::MpiGroup;

#[cfg(feature = "cuda")]
mod nccl;
#[cfg(feature = "cuda")]
pub use self::nccl::NcclGroup;

#[cfg(test)]
mod tests {
    use super::{Blocks, ProcessGroup, Solo, as_bytes, check};

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
        g.all_to_all(Blocks::new(b"abc", &[3]), Blocks::new(&mut out, &[3]))
            .unwrap();
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
        let to_all = |send: &[usize], recv: &[usize]| {
            g.all_to_all(Blocks::new(b"ab", send), Blocks::new(&mut [0u8; 2], recv))
                .unwrap_err()
        };
        let e = to_all(&[1, 1], &[2]);
        assert!(e.to_string().contains("2 send counts for 1 ranks"), "{e}");
        let e = to_all(&[3], &[2]);
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
        assert!(check::blocks(4, "send", 6, &[1, 2, 3, 0]).is_ok());
        assert!(check::blocks(4, "recv", 4, &[1, 1, 1, 1]).is_ok());
        assert!(check::blocks(4, "recv", 4, &[1, 1, 1]).is_err());
        assert!(check::blocks(4, "send", usize::MAX, &[usize::MAX, 1, 0, 0]).is_err());
        assert!(check::root(4, 3).is_ok());
        assert!(check::root(4, 4).is_err());
    }
}
