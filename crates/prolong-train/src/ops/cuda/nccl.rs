//! NCCL collectives for multi-GPU training: data parallelism (all-reduce of gradients, or
//! ZeRO-1's reduce-scatter of gradients and all-gather of updated weights, with counts
//! from `dist::zero`) and Ulysses sequence parallelism (all-to-all from grouped send/recv,
//! with blocks from `dist::ulysses`).
//!
//! All calls are enqueued on the device's candle stream, so they are ordered with the
//! kernels and candle ops around them without extra synchronisation.

use std::path::Path;
use std::time::Duration;

use candle_core::CudaDevice;
use candle_core::cuda::cudarc::driver::CudaSlice;
use candle_core::cuda::cudarc::nccl::{Comm, Id, NcclType, ReduceOp, result};

use crate::dist::rank::RankInfo;
use crate::dist::unique_id::share_unique_id;
use crate::dist::{DistError, DistResult};

/// Bytes of an NCCL unique id.
const ID_BYTES: usize = 128;

/// One rank's communicator over the whole world.
pub struct Nccl {
    comm: Comm,
}

impl Nccl {
    /// Joins the world: rank 0 creates the unique id and publishes it at `id_path` (a
    /// path every rank sees) under `tag` (the run's name, e.g. the Slurm job id); the
    /// others wait for it at most `timeout`.
    pub fn init(
        dev: &CudaDevice,
        rank: &RankInfo,
        id_path: &Path,
        tag: &str,
        timeout: Duration,
    ) -> DistResult<Self> {
        let mut made = Ok(());
        let bytes =
            share_unique_id(
                id_path,
                rank.is_root(),
                tag,
                ID_BYTES,
                timeout,
                || match Id::new() {
                    Ok(id) => id.internal().iter().map(|&c| c as u8).collect(),
                    Err(e) => {
                        made = Err(e);
                        vec![0; ID_BYTES]
                    }
                },
            )?;
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

    /// Sum over ranks, in place (data-parallel gradients).
    pub fn all_reduce_sum<T: NcclType>(&self, buf: &mut CudaSlice<T>) -> DistResult<()> {
        self.comm
            .all_reduce_in_place(buf, &ReduceOp::Sum)
            .map_err(|e| err("all-reduce", e))?;
        Ok(())
    }

    /// ZeRO-1 gradients: `send` is the padded flat vector (`world · shard`), `recv` this
    /// rank's shard of the sum.
    pub fn reduce_scatter_sum<T: NcclType>(
        &self,
        send: &CudaSlice<T>,
        recv: &mut CudaSlice<T>,
    ) -> DistResult<()> {
        self.check(
            send.len(),
            recv.len() * self.comm.world_size(),
            "reduce-scatter",
        )?;
        self.comm
            .reduce_scatter(send, recv, &ReduceOp::Sum)
            .map_err(|e| err("reduce-scatter", e))?;
        Ok(())
    }

    /// ZeRO-1 weights: every rank's `send` shard, in rank order, into `recv`.
    pub fn all_gather<T: NcclType>(
        &self,
        send: &CudaSlice<T>,
        recv: &mut CudaSlice<T>,
    ) -> DistResult<()> {
        self.check(
            recv.len(),
            send.len() * self.comm.world_size(),
            "all-gather",
        )?;
        self.comm
            .all_gather(send, recv)
            .map_err(|e| err("all-gather", e))?;
        Ok(())
    }

    /// All-to-all of equal blocks: block `r` of `send` goes to rank `r`, and block `r` of
    /// `recv` comes from rank `r` (Ulysses' layouts: `dist::ulysses`). One NCCL group of
    /// sends and receives, so no pair of ranks waits on another.
    pub fn all_to_all<T: NcclType>(
        &self,
        send: &CudaSlice<T>,
        recv: &mut CudaSlice<T>,
    ) -> DistResult<()> {
        let world = self.comm.world_size();
        self.check(send.len(), recv.len(), "all-to-all")?;
        if send.len() % world != 0 {
            return Err(DistError::Layout(format!(
                "all-to-all of {} elements over {world} ranks",
                send.len()
            )));
        }
        let block = send.len() / world;
        result::group_start().map_err(|e| err("group start", e))?;
        let mut calls = Ok(());
        for peer in 0..world {
            let range = peer * block..(peer + 1) * block;
            calls = calls
                .and_then(|()| self.comm.send(&send.slice(range.clone()), peer as i32))
                .and_then(|()| {
                    self.comm
                        .recv(&mut recv.slice_mut(range), peer as i32)
                        .map(drop)
                });
        }
        // The group is closed whatever happened inside it.
        let end = result::group_end();
        calls.map_err(|e| err("send/recv", e))?;
        end.map_err(|e| err("group end", e))?;
        Ok(())
    }

    fn check(&self, got: usize, want: usize, op: &'static str) -> DistResult<()> {
        if got == want {
            return Ok(());
        }
        Err(DistError::Layout(format!(
            "{op}: {got} elements where {want} are needed on {} ranks",
            self.comm.world_size()
        )))
    }
}

fn err(op: &'static str, e: result::NcclError) -> DistError {
    DistError::Nccl {
        op,
        msg: format!("{e:?}"),
    }
}
