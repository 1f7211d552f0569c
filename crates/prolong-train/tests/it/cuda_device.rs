//! Device and backend selection, and what of the NCCL group runs without a GPU: which
//! device a rank gets (`[device] kind`, `--device`, auto), the clear error when cuda is
//! asked of a build or machine without it, the backend of a world (NCCL for GPU ranks,
//! MPI for CPU ranks), the size checks every backend shares, and the rendezvous of the
//! NCCL unique id. CPU tests: they run in every build.

use std::cell::Cell;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use prolong_train::dist::DistResult;
use prolong_train::dist::group::{Backend, Blocks, Collectives, ProcessGroup};
use prolong_train::dist::unique_id::{DEFAULT_TIMEOUT, ID_FILE, Rendezvous};
use prolong_train::stage::{DeviceChoice, StageConfig};
use prolong_train::train::device::{Available, DeviceKind, resolve, select};

use crate::train_util as util;

#[test]
fn device_choices_parse_and_print_back() {
    for (text, want) in [
        ("auto", DeviceChoice::Auto),
        ("cpu", DeviceChoice::Cpu),
        ("cuda", DeviceChoice::Cuda(None)),
        ("cuda:3", DeviceChoice::Cuda(Some(3))),
    ] {
        assert_eq!(text.parse::<DeviceChoice>(), Ok(want));
        assert_eq!(want.to_string(), text);
    }
    for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""] {
        let e = bad.parse::<DeviceChoice>().unwrap_err();
        assert!(
            e.contains("not one of auto, cpu, cuda, cuda:N"),
            "{bad}: {e}"
        );
    }
}

fn recipe_with_device(device: &str) -> String {
    let base = util::recipe(Path::new("data"), Path::new("out"), 16, 1, 1, 0, 64, 1e-3);
    format!("{base}\n[device]\n{device}\n")
}

#[test]
fn recipe_device_kind_defaults_to_auto_and_names_a_bad_value() {
    let p = Path::new("r.toml");
    let none = StageConfig::parse(&recipe_with_device(""), p).unwrap();
    assert_eq!(none.device.kind, DeviceChoice::Auto);
    let gpu = StageConfig::parse(&recipe_with_device("kind = \"cuda:1\""), p).unwrap();
    assert_eq!(gpu.device.kind, DeviceChoice::Cuda(Some(1)));
    let text = recipe_with_device("kind = \"tpu\"");
    let line = text.lines().position(|l| l.contains("tpu")).unwrap() + 1;
    let e = StageConfig::parse(&text, p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("r.toml:{line}")), "{e}");
    assert!(
        e.contains("\"tpu\" is not one of auto, cpu, cuda, cuda:N"),
        "{e}"
    );
}

fn avail(cuda_built: bool, gpus: usize) -> Available {
    Available {
        cuda_built,
        gpus,
        why_none: (cuda_built && gpus == 0).then(|| "CUDA_ERROR_NO_DEVICE".into()),
    }
}

#[test]
fn auto_takes_the_local_ranks_gpu_when_there_is_one_else_the_cpu() {
    use DeviceChoice::*;
    let kind = |c, local, a: &Available| resolve(c, local, a).map(|(k, _)| k);
    // A build without the feature, or a machine without a GPU: the CPU, said why.
    let (k, why) = resolve(Auto, 0, &avail(false, 0)).unwrap();
    assert_eq!(
        (k, why.as_str()),
        (DeviceKind::Cpu, "auto: this build has no `cuda` feature")
    );
    let (k, why) = resolve(Auto, 1, &avail(true, 0)).unwrap();
    assert_eq!(k, DeviceKind::Cpu);
    assert!(
        why.contains("no GPU is visible (CUDA_ERROR_NO_DEVICE)"),
        "{why}"
    );
    // GPUs: cuda:LOCAL_RANK, as torchrun's convention.
    assert_eq!(kind(Auto, 0, &avail(true, 8)).unwrap(), DeviceKind::Cuda(0));
    assert_eq!(kind(Auto, 5, &avail(true, 8)).unwrap(), DeviceKind::Cuda(5));
    assert_eq!(
        kind(Cuda(None), 3, &avail(true, 4)).unwrap(),
        DeviceKind::Cuda(3)
    );
    assert_eq!(
        kind(Cuda(Some(1)), 3, &avail(true, 4)).unwrap(),
        DeviceKind::Cuda(1)
    );
    // More ranks on the node than GPUs is an error, not ranks sharing a GPU or the CPU.
    let e = kind(Auto, 2, &avail(true, 2)).unwrap_err().to_string();
    assert!(e.contains("GPU 2 does not exist: 2 visible"), "{e}");
    assert!(kind(Cuda(Some(4)), 0, &avail(true, 4)).is_err());
    // The CPU when asked, whatever the machine has.
    assert_eq!(kind(Cpu, 3, &avail(true, 8)).unwrap(), DeviceKind::Cpu);
}

#[test]
fn cuda_asked_of_a_build_or_machine_without_it_is_one_error_line() {
    use DeviceChoice::*;
    for choice in [Cuda(None), Cuda(Some(0))] {
        let e = resolve(choice, 0, &avail(false, 0))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("device {choice}: "))
                && e.contains("built without the `cuda` feature"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        let e = resolve(choice, 0, &avail(true, 0)).unwrap_err().to_string();
        assert!(
            e.contains("no GPU is visible (CUDA_ERROR_NO_DEVICE)"),
            "{e}"
        );
    }
}

/// On this machine (no GPU; in a build without `cuda` the driver is not even asked):
/// auto opens the CPU and says so, cuda is refused.
#[test]
fn this_machine_trains_on_the_cpu_by_default() {
    let here = Available::here();
    assert_eq!(here.cuda_built, cfg!(feature = "cuda"));
    if here.gpus > 0 {
        eprintln!("skipped: this machine has {} GPU(s)", here.gpus);
        return;
    }
    let (dev, line) = select(DeviceChoice::Auto, 0).unwrap();
    assert!(dev.is_cpu());
    assert!(line.starts_with("device cpu (auto: "), "{line}");
    let e = select(DeviceChoice::Cuda(None), 0).unwrap_err().to_string();
    let want = if cfg!(feature = "cuda") {
        "no GPU is visible"
    } else {
        "built without the `cuda` feature"
    };
    assert!(e.contains(want), "{e}");
}

/// The trainer's first line names its device; `--device cuda` on this machine stops
/// before any model is built, with one error line naming the device.
#[test]
fn train_says_its_device_and_refuses_cuda_it_cannot_have() {
    if Available::here().gpus > 0 {
        eprintln!("skipped: this machine has a GPU");
        return;
    }
    let (tmp, data, out) = util::temp_packed(&util::random_samples(4, 16, 64, 1));
    let cfg = util::write(
        &tmp.path().join("r.toml"),
        &util::recipe(&data, &out, 16, 1, 1, 0, 64, 1e-3),
    );
    let train = |device: Option<&str>| {
        let mut cmd = Command::new(util::bin());
        cmd.args(["train", "--quiet", "--config"]).arg(&cfg);
        cmd.args(device.map(|d| ["--device", d]).into_iter().flatten());
        cmd.env_remove("RANK").output().unwrap()
    };
    let o = train(Some("cuda:0"));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("device cuda:0: "),
        "{err}"
    );
    assert!(!out.join("final").exists(), "nothing trained");
    let o = train(None);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("device cpu (auto: "), "{err}");
    let o = train(Some("gpu"));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not one of auto, cpu, cuda, cuda:N"));
}

#[test]
fn gpu_ranks_use_nccl_cpu_ranks_mpi_and_one_rank_neither() {
    assert_eq!(Backend::select(false, 1), Backend::Solo);
    assert_eq!(Backend::select(true, 1), Backend::Solo);
    assert_eq!(Backend::select(false, 2), Backend::Mpi);
    assert_eq!(Backend::select(false, 64), Backend::Mpi);
    assert_eq!(Backend::select(true, 2), Backend::Nccl);
    assert_eq!(Backend::select(true, 8), Backend::Nccl);
}

/// A backend of four ranks that counts the transfers it is asked for (NCCL's place
/// when there is no GPU): every size check runs before a backend sees a call.
#[derive(Default)]
struct Counting {
    calls: Cell<usize>,
}

impl Counting {
    fn called(&self) -> DistResult<()> {
        self.calls.set(self.calls.get() + 1);
        Ok(())
    }
}

impl Collectives for Counting {
    fn rank(&self) -> usize {
        1
    }
    fn size(&self) -> usize {
        4
    }
    fn all_reduce_sum(&self, _: &mut [f32]) -> DistResult<()> {
        self.called()
    }
    fn reduce_scatter_sum(&self, _: &[f32], _: &mut [f32]) -> DistResult<()> {
        self.called()
    }
    fn all_gather(&self, _: &[u8], _: &mut [u8]) -> DistResult<()> {
        self.called()
    }
    fn all_to_all(&self, _: Blocks<'_, &[u8]>, _: Blocks<'_, &mut [u8]>) -> DistResult<()> {
        self.called()
    }
    fn broadcast(&self, _: &mut [u8], _: usize) -> DistResult<()> {
        self.called()
    }
    fn barrier(&self) -> DistResult<()> {
        self.called()
    }
}

#[test]
fn every_backend_gets_the_shared_size_checks() {
    let b = Counting::default();
    let g: &dyn ProcessGroup = &b;
    let err = |r: DistResult<()>| r.unwrap_err().to_string();
    let e = err(g.reduce_scatter_sum(&[0.0; 8], &mut [0.0; 3]));
    assert!(
        e.contains("8 elements sent is not 4 ranks x 3 received"),
        "{e}"
    );
    let e = err(g.all_gather(&[0; 2], &mut [0; 7]));
    assert!(
        e.contains("7 elements received is not 4 ranks x 2 sent"),
        "{e}"
    );
    let to_all = |send: &[usize], recv: &mut [u8], recv_counts: &[usize]| {
        g.all_to_all(Blocks::new(&[0; 3], send), Blocks::new(recv, recv_counts))
    };
    let e = err(to_all(&[1, 1, 1], &mut [0; 3], &[1, 1, 1, 0]));
    assert!(e.contains("3 send counts for 4 ranks"), "{e}");
    let e = err(to_all(&[1, 1, 1, 0], &mut [0; 3], &[1, 1, 1, 1]));
    assert!(
        e.contains("recv counts add up to Some(4), the buffer holds 3"),
        "{e}"
    );
    let e = err(g.broadcast(&mut [0; 2], 4));
    assert!(e.contains("root 4 of 4 ranks"), "{e}");
    assert_eq!(b.calls.get(), 0, "a refused call reaches no backend");
    g.reduce_scatter_sum(&[0.0; 8], &mut [0.0; 2]).unwrap();
    g.all_gather(&[0; 2], &mut [0; 8]).unwrap();
    to_all(&[1, 1, 1, 0], &mut [0; 4], &[1, 1, 1, 1]).unwrap();
    g.broadcast(&mut [0; 2], 3).unwrap();
    g.all_reduce_sum(&mut [0.0; 5]).unwrap();
    g.barrier().unwrap();
    assert_eq!((g.rank(), g.size(), b.calls.get()), (1, 4, 6));
}

fn vars<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        set.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn the_unique_id_rendezvous_is_tagged_by_the_run() {
    let out = Path::new("/runs/stage1");
    let at = |set: &[(&str, &str)]| Rendezvous::from_vars(vars(set), out);
    // `prolong-train launch --backend env` names the run; it wins over the rest.
    let r = at(&[("PROLONG_RUN_ID", "launch-7"), ("SLURM_JOB_ID", "12")]).unwrap();
    assert_eq!(
        r,
        Rendezvous {
            path: out.join(ID_FILE),
            tag: "launch-7".into(),
            timeout: DEFAULT_TIMEOUT,
        }
    );
    let r = at(&[("SLURM_JOB_ID", "12"), ("SLURM_STEP_ID", "3")]).unwrap();
    assert_eq!(r.tag, "slurm-12.3");
    let r = at(&[("TORCHELASTIC_RUN_ID", "a1b2")]).unwrap();
    assert_eq!(r.tag, "torchrun-a1b2");
    let r = at(&[
        ("PROLONG_RUN_ID", "x"),
        ("PROLONG_NCCL_ID_FILE", "/shared/id"),
        ("PROLONG_NCCL_ID_TIMEOUT", "30"),
    ])
    .unwrap();
    assert_eq!(
        (r.path.as_path(), r.timeout),
        (Path::new("/shared/id"), Duration::from_secs(30))
    );
    // torchrun's default run id is the same for every run: not a tag.
    let e = at(&[("TORCHELASTIC_RUN_ID", "none"), ("MASTER_PORT", "29500")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("PROLONG_RUN_ID") && e.contains("unique to this run"),
        "{e}"
    );
    let e = at(&[("PROLONG_RUN_ID", "x"), ("PROLONG_NCCL_ID_TIMEOUT", "soon")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("PROLONG_NCCL_ID_TIMEOUT"), "{e}");
}

/// Rank 0 creates the output folder the id file goes in (the run's checkpoints are
/// not there yet when the ranks meet); another rank reads the id under the same tag.
#[test]
fn rank_zero_publishes_the_id_where_the_others_find_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("not-yet").join("out");
    let at = Rendezvous::from_vars(vars(&[("PROLONG_RUN_ID", "run-1")]), &out).unwrap();
    let id: Vec<u8> = (0..128u8).collect();
    assert_eq!(at.share(true, 128, || id.clone()).unwrap(), id);
    assert!(out.join(ID_FILE).is_file());
    assert_eq!(at.share(false, 128, Vec::new).unwrap(), id);
    let other = Rendezvous {
        tag: "run-2".into(),
        timeout: Duration::ZERO,
        ..at
    };
    let e = other.share(false, 128, Vec::new).unwrap_err().to_string();
    assert!(e.contains("no unique id after"), "{e}");
}
