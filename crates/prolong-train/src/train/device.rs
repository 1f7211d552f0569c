//! Which device a rank trains on: `[device] kind` in the recipe or `--device` on the
//! command line (`auto`, `cpu`, `cuda`, `cuda:N`), auto by default.
//!
//! Auto is torchrun's convention: `cuda:LOCAL_RANK` when the build has the `cuda`
//! feature and the machine shows GPUs, else the CPU. An explicit `cuda` that the build
//! or the machine cannot give is one error line, never a quiet fallback to the CPU.
//! [`resolve`] is the decision, a pure function of the choice, the local rank and what
//! is [`Available`] (so it is tested without a GPU); [`select`] asks the driver and
//! opens the device.

use std::fmt;

use crate::stage::DeviceChoice;
use candle_core::Device;

/// Where a rank runs, decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    /// The GPU of this ordinal (among those the process sees).
    Cuda(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What the build and the machine offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Built with the `cuda` feature.
    pub cuda_built: bool,
    /// GPUs the process sees (0 without the feature).
    pub gpus: usize,
    /// Why none are seen, when the driver said (e.g. no device, no driver).
    pub why_none: Option<String>,
}

impl Available {
    /// This build and machine: the driver is asked for its device count (on a `cuda`
    /// build only).
    pub fn here() -> Self {
        #[cfg(feature = "cuda")]
        {
            use cudarc::driver::result;
            match result::init().and_then(|()| result::device::get_count()) {
                Ok(n) => Self {
                    cuda_built: true,
                    gpus: usize::try_from(n).unwrap_or(0),
                    why_none: None,
                },
                Err(e) => Self {
                    cuda_built: true,
                    gpus: 0,
                    why_none: Some(format!("{e:?}")),
                },
            }
        }
        #[cfg(not(feature = "cuda"))]
        Self {
            cuda_built: false,
            gpus: 0,
            why_none: None,
        }
    }
}

/// A device that cannot be had, in one line.
#[derive(Debug, thiserror::Error)]
#[error("device {choice}: {msg}")]
pub struct DeviceError {
    pub choice: DeviceChoice,
    pub msg: String,
}

/// The device of the rank with local rank `local_rank` for `choice`, given what is
/// `avail`able, and why (the line the run prints first).
pub fn resolve(
    choice: DeviceChoice,
    local_rank: usize,
    avail: &Available,
) -> Result<(DeviceKind, String), DeviceError> {
    let fail = |msg: String| Err(DeviceError { choice, msg });
    let none_seen = || {
        let why = avail
            .why_none
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        format!("no GPU is visible{why}")
    };
    let gpu = |n: usize, why: String| {
        if n < avail.gpus {
            Ok((DeviceKind::Cuda(n), why))
        } else {
            fail(format!(
                "GPU {n} does not exist: {} visible (start at most that many ranks per node, or check CUDA_VISIBLE_DEVICES)",
                avail.gpus
            ))
        }
    };
    match choice {
        DeviceChoice::Cpu => Ok((DeviceKind::Cpu, "asked for".into())),
        DeviceChoice::Auto if !avail.cuda_built => Ok((
            DeviceKind::Cpu,
            "auto: this build has no `cuda` feature".into(),
        )),
        DeviceChoice::Auto if avail.gpus == 0 => {
            Ok((DeviceKind::Cpu, format!("auto: {}", none_seen())))
        }
        DeviceChoice::Auto => gpu(
            local_rank,
            format!("auto: local rank {local_rank} of {} GPU(s)", avail.gpus),
        ),
        DeviceChoice::Cuda(_) if !avail.cuda_built => fail(
            "this prolong-train was built without the `cuda` feature (cargo build --release --features cuda)"
                .into(),
        ),
        DeviceChoice::Cuda(_) if avail.gpus == 0 => fail(none_seen()),
        DeviceChoice::Cuda(None) => gpu(local_rank, format!("local rank {local_rank}")),
        DeviceChoice::Cuda(Some(n)) => gpu(n, "asked for".into()),
    }
}

/// The device of this rank ([`resolve`] on this build and machine), opened, with the
/// line that says which it is and why.
pub fn select(choice: DeviceChoice, local_rank: usize) -> Result<(Device, String), DeviceError> {
    let (kind, why) = resolve(choice, local_rank, &Available::here())?;
    let dev = match kind {
        DeviceKind::Cpu => Device::Cpu,
        DeviceKind::Cuda(n) => Device::new_cuda(n).map_err(|e| DeviceError {
            choice,
            msg: format!("opening GPU {n}: {e}"),
        })?,
    };
    Ok((dev, format!("device {kind} ({why})")))
}
