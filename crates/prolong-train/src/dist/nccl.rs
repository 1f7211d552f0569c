//! NCCL collectives for multi-GPU training: data parallelism (all-reduce of gradients, or
//! ZeRO's reduce-scatter of gradients and all-gather of updated weights, with counts
//! from `dist::zero`) and Ulysses sequence parallelism (all-to-all from grouped send/recv,
//! with blocks from `dist::ulysses`). `dist::group::NcclGroup` is the process group over
//! these calls.
//!
//! All calls are enqueued on the device's candle stream, so they are ordered with the
//! kernels and candle ops around them without extra synchronisation. Buffer sizes are
//! checked with the same checks as every process group's (`dist::group::check`), in
//! elements, before anything is enqueued.

use candle_core::cuda::cudarc::driver::{
    CudaSlice, CudaView, CudaViewMut, DevicePtr, DevicePtrMut,
};
use candle_core::cuda::cudarc::nccl::{Comm, Id, NcclType, ReduceOp, result};
use candle_core::{CudaDevice, DType, Device, Tensor};

use crate::dist::group::{Blocks, check};
use crate::dist::rank::RankInfo;
use crate::dist::unique_id::Rendezvous;
use crate::dist::{DistError, DistResult};
use crate::ops::cuda::launch::{self, Buf};

/// Bytes of an NCCL unique id.
const ID_BYTES: usize = 128;

/// One rank's communicator over the whole world.
pub struct Nccl {
    comm: Comm,
}

impl Nccl {
    /// Joins the world: rank 0 creates the unique id and publishes it at the rendezvous
    /// (a path every rank sees, under the run's tag); the others wait for it there.
    pub fn init(dev: &CudaDevice, rank: &RankInfo, at: &Rendezvous) -> DistResult<Self> {
        let mut made = Ok(());
        let bytes = at.share(rank.is_root(), ID_BYTES, || match Id::new() {
            Ok(id) => id.internal().iter().map(|&c| c as u8).collect(),
            Err(e) => {
                made = Err(e);
                vec![0; ID_BYTES]
            }
        })?;
        made.map_err(|e| err("get unique id", e))?;
        let mut internal = [0 as std::ffi::c_char; ID_BYTES];
        for (d, s) in internal.iter_mut().zip(&bytes) {
            *d = *s as std::ffi::c_char;
        }
        let comm = Comm::from_rank(
            dev.cuda_stream(),
            rank.rank,
            rank.world_size,
            Id::uninit(internal),
        )
        .map_err(|e| err("init rank", e))?;
        Ok(Self { comm })
    }

    fn world(&self) -> usize {
        self.comm.world_size()
    }

    /// Sum over ranks, in place (data-parallel gradients).
    pub fn all_reduce_sum<T: NcclType, B: DevicePtrMut<T>>(&self, buf: &mut B) -> DistResult<()> {
        self.comm
            .all_reduce_in_place(buf, &ReduceOp::Sum)
            .map_err(|e| err("all-reduce", e))?;
        Ok(())
    }

    /// The sum over the ranks of the f32 tensor `t` on this GPU, as a new tensor there
    /// (NCCL reads `t`'s buffer and writes the new one: no host copy); `None` when `t`
    /// is not an f32 tensor on a CUDA device.
    pub fn all_reduce_sum_tensor(&self, t: &Tensor) -> DistResult<Option<Tensor>> {
        let (Device::Cuda(dev), DType::F32) = (t.device(), t.dtype()) else {
            return Ok(None);
        };
        let n = t.elem_count();
        if n == 0 {
            return Ok(Some(t.clone()));
        }
        let tensor_err = |e: crate::Error| DistError::Nccl {
            op: "all-reduce",
            msg: e.to_string(),
        };
        let t = t.contiguous().map_err(|e| tensor_err(e.into()))?;
        let mut sum = dev
            .alloc_zeros::<f32>(n)
            .map_err(|e| tensor_err(e.into()))?;
        {
            let b = Buf::of(&t).map_err(tensor_err)?;
            let v = b.view::<f32>().map_err(tensor_err)?;
            self.comm
                .all_reduce(&v, &mut sum, &ReduceOp::Sum)
                .map_err(|e| err("all-reduce", e))?;
        }
        let sum = launch::tensor(dev, sum, t.shape().clone());
        Ok(Some(sum))
    }

    /// ZeRO gradients: `send` is the padded flat vector (`world · shard`), `recv` this
    /// rank's shard of the sum.
    pub fn reduce_scatter_sum<T: NcclType, S: DevicePtr<T>, R: DevicePtrMut<T>>(
        &self,
        send: &S,
        recv: &mut R,
    ) -> DistResult<()> {
        check::reduce_scatter(self.world(), send.len(), recv.len())?;
        self.comm
            .reduce_scatter(send, recv, &ReduceOp::Sum)
            .map_err(|e| err("reduce-scatter", e))?;
        Ok(())
    }

    /// ZeRO weights: every rank's `send` shard, in rank order, into `recv`.
    pub fn all_gather<T: NcclType, S: DevicePtr<T>, R: DevicePtrMut<T>>(
        &self,
        send: &S,
        recv: &mut R,
    ) -> DistResult<()> {
        check::all_gather(self.world(), send.len(), recv.len())?;
        self.comm
            .all_gather(send, recv)
            .map_err(|e| err("all-gather", e))?;
        Ok(())
    }

    /// `root`'s `buf` into every rank's, in place.
    pub fn broadcast<T: NcclType, B: DevicePtrMut<T>>(
        &self,
        buf: &mut B,
        root: usize,
    ) -> DistResult<()> {
        check::root(self.world(), root)?;
        self.comm
            .broadcast_in_place(buf, root as i32)
            .map_err(|e| err("broadcast", e))?;
        Ok(())
    }

    /// All-to-all of equal blocks: block `r` of `send` goes to rank `r`, and block `r` of
    /// `recv` comes from rank `r` (Ulysses' layouts: `dist::ulysses`).
    pub fn all_to_all<T: NcclType>(
        &self,
        send: &CudaSlice<T>,
        recv: &mut CudaSlice<T>,
    ) -> DistResult<()> {
        let world = self.world();
        if send.len() % world != 0 {
            return Err(DistError::Layout(format!(
                "all-to-all of {} elements over {world} ranks",
                send.len()
            )));
        }
        let counts = vec![send.len() / world; world];
        self.all_to_all_v(
            Blocks::new(send.slice(..), &counts),
            Blocks::new(recv.slice_mut(..), &counts),
        )
    }

    /// All-to-all of blocks of any size (the process group's): block r of `send` goes
    /// to rank r, block r of `recv` comes from rank r (counts in elements). One NCCL
    /// group of sends and receives, so no pair of ranks waits on another; empty blocks
    /// are skipped on both sides (the counts agree pairwise).
    pub fn all_to_all_v<T: NcclType>(
        &self,
        send: Blocks<'_, CudaView<'_, T>>,
        mut recv: Blocks<'_, CudaViewMut<'_, T>>,
    ) -> DistResult<()> {
        check::blocks(self.world(), "send", send.buf.len(), send.counts)?;
        check::blocks(self.world(), "recv", recv.buf.len(), recv.counts)?;
        let at = |counts: &[usize]| {
            counts
                .iter()
                .scan(0, |a, &c| {
                    *a += c;
                    Some(*a - c..*a)
                })
                .collect::<Vec<_>>()
        };
        let (sends, recvs) = (at(send.counts), at(recv.counts));
        result::group_start().map_err(|e| err("group start", e))?;
        let mut calls = Ok(());
        for (peer, (s, r)) in sends.into_iter().zip(recvs).enumerate() {
            if !s.is_empty() {
                calls = calls.and_then(|()| self.comm.send(&send.buf.slice(s), peer as i32));
            }
            if !r.is_empty() {
                calls = calls.and_then(|()| {
                    self.comm
                        .recv(&mut recv.buf.slice_mut(r), peer as i32)
                        .map(drop)
                });
            }
        }
        // The group is closed whatever happened inside it.
        let end = result::group_end();
        calls.map_err(|e| err("send/recv", e))?;
        end.map_err(|e| err("group end", e))?;
        Ok(())
    }
}

fn err(op: &'static str, e: result::NcclError) -> DistError {
    DistError::Nccl {
        op,
        msg: format!("{e:?}"),
    }
}
