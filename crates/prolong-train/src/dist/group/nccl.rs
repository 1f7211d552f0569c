//! GPU ranks through NCCL (the communicator of [`crate::dist::nccl`]).

use candle_core::cuda::cudarc::driver::{CudaSlice, DeviceRepr, DriverError, ValidAsZeroBits};
use candle_core::{CudaDevice, Tensor};

use super::{Blocks, Collectives, DistError, DistResult};
use crate::dist::nccl::Nccl;
use crate::dist::rank::RankInfo;
use crate::dist::unique_id::Rendezvous;

/// GPU ranks through NCCL, one communicator over the world on each rank's device.
///
/// The trait's buffers are host slices, so every call stages them through device
/// buffers: the host buffer is copied up, NCCL runs on the device's stream, the
/// result is copied down and the stream synchronised before the call returns. Per
/// call that moves over PCIe, on each rank: all-reduce 4·n bytes up and 4·n down
/// (n elements); reduce-scatter 4·n up (the whole send buffer) and 4·n/world down;
/// all-gather and all-to-all their send bytes up and receive bytes down; broadcast
/// the buffer up on the root and down everywhere; barrier 4 bytes each way. (A
/// bf16 step of a P-parameter model under `shard = "none"` all-reduces its f32
/// gradients.) Device tensors skip both copies through
/// [`ProcessGroup::all_reduce_sum_on_device`], which the trainer's data-parallel
/// gradient sum uses (`train/step.rs`).
pub struct NcclGroup {
    nccl: Nccl,
    dev: CudaDevice,
    rank: usize,
    size: usize,
}

impl NcclGroup {
    /// Joins the world of `ranks` on `dev` (this rank's GPU): rank 0 creates the
    /// unique id and publishes it at the rendezvous, the others read it there.
    pub fn init(dev: &CudaDevice, ranks: &RankInfo, at: &Rendezvous) -> DistResult<Self> {
        Ok(Self {
            nccl: Nccl::init(dev, ranks, at)?,
            dev: dev.clone(),
            rank: ranks.rank,
            size: ranks.world_size,
        })
    }

    /// A device copy of `host` (at least one element: CUDA has no empty buffers).
    fn up<T: DeviceRepr + ValidAsZeroBits>(&self, host: &[T]) -> DistResult<CudaSlice<T>> {
        let mut d = self.alloc::<T>(host.len())?;
        if !host.is_empty() {
            self.dev
                .cuda_stream()
                .memcpy_htod(host, &mut d.slice_mut(0..host.len()))
                .map_err(|e| driver("copy to the device", e))?;
        }
        Ok(d)
    }

    fn alloc<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> DistResult<CudaSlice<T>> {
        self.dev
            .alloc_zeros::<T>(n.max(1))
            .map_err(|e| DistError::Nccl {
                op: "device buffer",
                msg: e.to_string(),
            })
    }

    /// `dev`'s first `host.len()` elements copied into `host`, once the stream's
    /// work (the collective) is done.
    fn down<T: DeviceRepr>(&self, dev: &CudaSlice<T>, host: &mut [T]) -> DistResult<()> {
        let stream = self.dev.cuda_stream();
        if !host.is_empty() {
            stream
                .memcpy_dtoh(&dev.slice(0..host.len()), host)
                .map_err(|e| driver("copy to the host", e))?;
        }
        stream.synchronize().map_err(|e| driver("synchronize", e))
    }

    /// A host-to-host collective `op` through device buffers: `send` up, `op` from it
    /// into a buffer of `recv`'s length, that down into `recv` (nothing when `recv` is
    /// empty).
    fn staged<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        send: &[T],
        recv: &mut [T],
        op: impl FnOnce(&CudaSlice<T>, &mut CudaSlice<T>) -> DistResult<()>,
    ) -> DistResult<()> {
        if recv.is_empty() {
            return Ok(());
        }
        let s = self.up(send)?;
        let mut r = self.alloc::<T>(recv.len())?;
        op(&s, &mut r)?;
        self.down(&r, recv)
    }
}

fn driver(op: &'static str, e: DriverError) -> DistError {
    DistError::Nccl {
        op,
        msg: format!("{e:?}"),
    }
}

impl Collectives for NcclGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> DistResult<()> {
        if buf.is_empty() {
            return Ok(()); // the same on every rank: lengths match
        }
        let mut d = self.up(buf)?;
        self.nccl.all_reduce_sum(&mut d)?;
        self.down(&d, buf)
    }

    /// No host copy: NCCL reads the tensor's device buffer and writes a new one.
    /// Waited for before returning, so the communication clock (`Timed`) measures
    /// the transfer rather than its enqueueing.
    fn all_reduce_sum_on_device(&self, t: &Tensor) -> DistResult<Option<Tensor>> {
        let sum = self.nccl.all_reduce_sum_tensor(t)?;
        if sum.is_some() {
            let stream = self.dev.cuda_stream();
            stream.synchronize().map_err(|e| driver("synchronize", e))?;
        }
        Ok(sum)
    }

    fn reduce_scatter_sum(&self, send: &[f32], recv: &mut [f32]) -> DistResult<()> {
        self.staged(send, recv, |s, r| self.nccl.reduce_scatter_sum(s, r))
    }

    fn all_gather(&self, send: &[u8], recv: &mut [u8]) -> DistResult<()> {
        self.staged(send, recv, |s, r| self.nccl.all_gather(s, r))
    }

    fn all_to_all(&self, send: Blocks<'_, &[u8]>, recv: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        let s = self.up(send.buf)?;
        let mut r = self.alloc::<u8>(recv.buf.len())?;
        self.nccl.all_to_all_v(
            Blocks::new(s.slice(0..send.buf.len()), send.counts),
            Blocks::new(r.slice_mut(0..recv.buf.len()), recv.counts),
        )?;
        self.down(&r, recv.buf)
    }

    fn broadcast(&self, buf: &mut [u8], root: usize) -> DistResult<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut d = if self.rank == root {
            self.up(buf)?
        } else {
            self.alloc::<u8>(buf.len())?
        };
        self.nccl.broadcast(&mut d, root)?;
        self.down(&d, buf)
    }

    fn barrier(&self) -> DistResult<()> {
        // NCCL has no barrier: a one-element all-reduce, waited for, is one.
        let mut d = self.alloc::<f32>(1)?;
        self.nccl.all_reduce_sum(&mut d)?;
        self.down(&d, &mut [0f32])
    }
}
