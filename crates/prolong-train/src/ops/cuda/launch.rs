//! Kernel loading and the raw-buffer plumbing between candle tensors and launches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::cuda::cudarc::driver::{
    CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, DeviceRepr, DriverError,
    LaunchConfig,
};
use candle_core::cuda::cudarc::nvrtc::Ptx;
use candle_core::cuda::{CudaDType, DeviceId, WrapErr};
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage, DType, Device, Shape, Storage, StorageRef, Tensor};

use crate::error::{Error, Result};

/// One PTX module per kernels/*.cu file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Module {
    Attention,
    Norm,
    Rope,
    Mlp,
    Loss,
    Adamw,
}

impl Module {
    /// The PTX build.rs compiled from kernels/<module>.cu.
    fn ptx(self) -> &'static str {
        macro_rules! ptx {
            ($f:literal) => {
                include_str!(concat!(env!("OUT_DIR"), "/", $f, ".ptx"))
            };
        }
        match self {
            Module::Attention => ptx!("attention"),
            Module::Norm => ptx!("norm"),
            Module::Rope => ptx!("rope"),
            Module::Mlp => ptx!("mlp"),
            Module::Loss => ptx!("loss"),
            Module::Adamw => ptx!("adamw"),
        }
    }
}

/// The kernel modules loaded so far, by device and module.
type Loaded = HashMap<(DeviceId, Module), Arc<CudaModule>>;

/// Kernel `name` of `module` and the device's stream to launch it on; each module is
/// loaded once per device.
pub fn func(
    dev: &CudaDevice,
    module: Module,
    name: &str,
) -> Result<(Arc<CudaStream>, CudaFunction)> {
    static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);
    let stream = dev.cuda_stream();
    let m = {
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        let map = loaded.get_or_insert_with(HashMap::new);
        match map.get(&(dev.id(), module)) {
            Some(m) => m.clone(),
            None => {
                let ptx = Ptx::from_src(module.ptx());
                let m = driver(stream.context().load_module(ptx))?;
                map.insert((dev.id(), module), m.clone());
                m
            }
        }
    };
    let f = driver(m.load_function(name))?;
    Ok((stream, f))
}

/// The CUDA device of `t` when it is a bf16 tensor on a GPU: the fused path applies.
pub fn bf16_cuda(t: &Tensor) -> Option<CudaDevice> {
    match t.device() {
        Device::Cuda(dev) if t.dtype() == DType::BF16 => Some(dev.clone()),
        _ => None,
    }
}

/// A contiguous tensor's device buffer, held for the duration of a launch.
pub struct Buf<'a> {
    storage: StorageRef<'a>,
    offset: usize,
    len: usize,
}

impl<'a> Buf<'a> {
    /// `t` must be contiguous (call `.contiguous()` first).
    pub fn of(t: &'a Tensor) -> Result<Self> {
        let (storage, layout) = t.storage_and_layout();
        if !layout.is_contiguous() {
            return Err(shape_err("a kernel input is not contiguous".into()));
        }
        Ok(Self {
            offset: layout.start_offset(),
            len: t.elem_count(),
            storage,
        })
    }

    pub fn view<T: CudaDType>(&self) -> Result<CudaView<'_, T>> {
        match &*self.storage {
            Storage::Cuda(cs) => Ok(cs
                .as_cuda_slice::<T>()?
                .slice(self.offset..self.offset + self.len)),
            _ => Err(shape_err("a kernel input is not on the GPU".into())),
        }
    }
}

/// A freshly written device buffer as a tensor of `shape`.
pub fn tensor<T: CudaDType + DeviceRepr>(
    dev: &CudaDevice,
    slice: CudaSlice<T>,
    shape: impl Into<Shape>,
) -> Tensor {
    let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(slice, dev.clone()));
    Tensor::from_storage(storage, shape, BackpropOp::none(), false)
}

/// Host values copied to the device (small tables: cu_seqlens, tiles).
pub fn upload<T: DeviceRepr + 'static>(dev: &CudaDevice, host: &[T]) -> Result<CudaSlice<T>> {
    let mut d = unsafe { dev.alloc::<T>(host.len().max(1))? };
    dev.memcpy_htod(host, &mut d)?;
    Ok(d)
}

/// Grid-stride elementwise launch over `n` elements.
pub fn elementwise(n: usize) -> LaunchConfig {
    const THREADS: u32 = 256;
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 65_535 * 8) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row.
pub fn rows(n_rows: usize, threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n_rows as u32, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

pub fn shape_err(msg: String) -> Error {
    Error::Shape { op: "cuda", msg }
}

/// A cudarc driver error as a candle error (the crate's error has no CUDA variant).
pub fn driver<T>(r: std::result::Result<T, DriverError>) -> Result<T> {
    Ok(r.w()?)
}
