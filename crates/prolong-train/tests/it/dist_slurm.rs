//! The Slurm path on a real one-node Slurm: `scripts/slurm-up.sh` starts Debian's
//! munged, slurmctld and slurmd under a temporary folder (installing them where it
//! can), then `srun` ranks find their place from Slurm's variables and
//! `pipelines/slurm/train-multinode.sbatch`, submitted with `sbatch --wait`, trains
//! on two MPI ranks (PMIx) what one rank trains. Where the machine cannot start Slurm
//! (not root, no packages, no Open MPI), the test says it skipped.

#![cfg(feature = "mpi")]

use crate::train_util as util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_prolong-train");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running one-node Slurm; stopped when dropped.
struct Slurm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl Slurm {
    /// Starts it, or says why not (and the test skips).
    fn start() -> Result<Slurm, String> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/slurm-up.sh"))
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run scripts/slurm-up.sh: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        let conf = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Ok(Slurm { dir, conf })
    }

    /// A Slurm client command (srun, sbatch) aimed at this Slurm, with no rank
    /// variables of an enclosing launcher.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf)
            .env("TMPDIR", self.dir.path())
            .env_remove("RANK")
            .env_remove("WORLD_SIZE")
            .env_remove("LOCAL_RANK");
        cmd
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/slurm-up.sh"))
            .arg("--down")
            .arg(self.dir.path())
            .status();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every step's loss and the final weights of a run (the MPI tests' reader).
fn result(out: &Path) -> (Vec<f64>, Vec<(String, Vec<f32>)>) {
    let (curve, weights) = crate::dist_group::result(out);
    (curve.iter().map(|(loss, _)| *loss).collect(), weights)
}

#[test]
fn slurm_ranks_and_the_multinode_sbatch_train_as_one_rank() {
    let slurm = match Slurm::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("slurm test: skipped: cannot start a one-node Slurm here: {why}");
            return;
        }
    };

    // srun's tasks are ranks 0 and 1 of 2, from SLURM_PROCID / SLURM_NTASKS.
    let out = slurm
        .command("srun")
        .args(["-n", "2", "--mpi=pmix", EXE, "ranks"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["rank 0 of 2 (local rank 0)", "rank 1 of 2 (local rank 1)"]
    );

    // The same tiny recipe on one rank, and on two Slurm tasks through the sbatch script.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &util::random_samples(40, 128, 64, 5));
    let recipe = |name: &str| {
        util::write(
            &tmp.path().join(format!("{name}.toml")),
            &util::recipe(&data, &tmp.path().join(name), 128, 4, 4, 0, 64, 3e-3),
        )
    };
    let one = recipe("one");
    let out = Command::new(EXE)
        .args(["train", "--quiet", "--config"])
        .arg(&one)
        .env_remove("RANK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let two = recipe("slurm");
    let out = slurm
        .command("sbatch")
        .arg("--wait")
        .args(["--nodes=1", "--ntasks-per-node=2", "--gpus-per-node=0"])
        .args(["--cpus-per-task=1", "--mem=0"])
        .arg(format!("--output={}/job-%j.out", tmp.path().display()))
        .arg(format!("--chdir={}", tmp.path().display()))
        .arg(repo_root().join("pipelines/slurm/train-multinode.sbatch"))
        .arg(&two)
        .arg("--quiet")
        .env("PROLONG_TRAIN", EXE)
        .output()
        .unwrap();
    let log: String = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("job-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(out.status.success(), "{}\njob log:\n{log}", text(&out));

    // Two ranks sum their f32 gradients in another order than one rank: within 1e-5
    // relative, as the mpirun data-parallel test (dist_group/train.rs) states.
    let (losses1, weights1) = result(&tmp.path().join("one"));
    let (losses2, weights2) = result(&tmp.path().join("slurm"));
    assert_eq!(losses1.len(), 4);
    assert_eq!(losses2.len(), 4, "job log:\n{log}");
    for (step, (a, b)) in losses1.iter().zip(&losses2).enumerate() {
        assert!(((a - b) / a).abs() < 1e-5, "step {step}: loss {a} vs {b}");
    }
    crate::dist_group::assert_weights_close(&weights1, &weights2, "2 Slurm tasks vs 1 rank");
}
