//! `prolong-train launch`: start N local ranks of a prolong-train command, as
//! `torchrun --nproc-per-node N` does; and `prolong-train ranks`, which prints
//! what one rank sees of its world (to check a launcher's setup).
//!
//! Two ways to start the ranks, because the two backends find their peers
//! differently:
//! * `--backend mpi` (CPU ranks): hands the job to Open MPI's `mpirun`, which
//!   starts the ranks, wires MPI between them and ends the whole job when one
//!   rank dies.
//! * `--backend env` (GPU ranks, NCCL): starts the ranks itself with torchrun's
//!   environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
//!   MASTER_PORT, and PROLONG_RUN_ID naming the run); NCCL's unique id goes
//!   from rank 0 to the others through a file under the run's output folder,
//!   tagged with the run id (`dist::unique_id`). When one rank fails, the
//!   others are killed and launch exits with the failed rank's status: a dead
//!   peer never leaves the rest waiting in a collective.

use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prolong_train::dist::rank::RankInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// CPU ranks through MPI: runs `mpirun -np N` (Open MPI).
    Mpi,
    /// Ranks started here with torchrun's environment (what NCCL ranks on GPUs use).
    Env,
}

#[derive(Debug, clap::Args)]
pub struct LaunchArgs {
    /// Ranks to start on this node: one per GPU; on CPUs, one per socket or a few.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub nproc_per_node: u32,
    /// How the ranks are started and find each other.
    #[arg(long, value_enum, default_value = "mpi")]
    pub backend: Backend,
    /// MASTER_ADDR for `--backend env`.
    #[arg(long, default_value = "127.0.0.1")]
    pub master_addr: String,
    /// MASTER_PORT for `--backend env`.
    #[arg(long, default_value_t = 29500)]
    pub master_port: u16,
    /// The mpirun program for `--backend mpi`.
    #[arg(long, default_value = "mpirun", env = "PROLONG_MPIRUN")]
    pub mpirun: String,
    /// The prolong-train command each rank runs, after `--` (e.g. `-- train --config C`).
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

pub fn main(args: LaunchArgs) -> Result<()> {
    if args.command.first().is_some_and(|c| c == "launch") {
        bail!("launch -- launch: a rank cannot launch ranks of its own");
    }
    let exe = std::env::current_exe().context("finding the prolong-train executable")?;
    let n = args.nproc_per_node as usize;
    let status = match args.backend {
        Backend::Mpi => {
            let mut cmd = Command::new(&args.mpirun);
            cmd.arg("-np").arg(n.to_string());
            // More ranks than cores is what tests and small machines do; binding
            // would pin several ranks to one core.
            cmd.args(["--oversubscribe", "--bind-to", "none"]);
            if is_root() {
                // Open MPI refuses root unless told; containers and CI run as root.
                cmd.arg("--allow-run-as-root");
            }
            cmd.arg(&exe).args(&args.command);
            cmd.status()
                .with_context(|| format!("starting {} (is Open MPI installed?)", args.mpirun))?
        }
        Backend::Env => run_env_ranks(&exe, n, &args)?,
    };
    if !status.success() {
        bail!("{}", describe(status, n));
    }
    Ok(())
}

/// Starts `n` ranks with torchrun's environment and waits for all of them; the
/// first failure kills the rest.
fn run_env_ranks(exe: &std::path::Path, n: usize, args: &LaunchArgs) -> Result<ExitStatus> {
    // The tag of this run's NCCL unique-id file (`dist::unique_id::Rendezvous`): one
    // value per launch, so no rank reads an id an earlier run left. A PROLONG_RUN_ID
    // already set is the user's and passes through.
    let run_id = std::env::var("PROLONG_RUN_ID").unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("launch-{}-{nanos}", std::process::id())
    });
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    for rank in 0..n {
        let child = Command::new(exe)
            .args(&args.command)
            .env("PROLONG_RUN_ID", &run_id)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("WORLD_SIZE", n.to_string())
            .env("LOCAL_WORLD_SIZE", n.to_string())
            .env("MASTER_ADDR", &args.master_addr)
            .env("MASTER_PORT", args.master_port.to_string())
            .spawn();
        match child {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                kill_all(&mut children);
                return Err(e).context(format!("starting rank {rank}"));
            }
        }
    }
    let (mut failed, mut last) = (None, None);
    while children.iter().any(Option::is_some) {
        for slot in children.iter_mut() {
            let Some(child) = slot else { continue };
            if let Some(status) = child.try_wait().context("waiting for a rank")? {
                *slot = None;
                last = Some(status);
                if !status.success() && failed.is_none() {
                    failed = Some(status);
                }
            }
        }
        if failed.is_some() {
            kill_all(&mut children);
            break;
        }
        // Polling, not a timing decision: how soon launch notices a finished rank.
        std::thread::sleep(Duration::from_millis(20));
    }
    failed.or(last).context("no rank was started")
}

fn kill_all(children: &mut [Option<Child>]) {
    for child in children.iter_mut().flatten() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn describe(status: ExitStatus, n: usize) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("a rank of {n} was killed by signal {signal}; the others were stopped");
    }
    match status.code() {
        Some(code) => format!("a rank of {n} failed with exit status {code}"),
        None => format!("a rank of {n} failed"),
    }
}

fn is_root() -> bool {
    // No libc dependency for one call: the owner of /proc/self is this process's uid.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// `prolong-train ranks`: one line with this process's rank, world size and
/// local rank as the trainer reads them from the launcher's environment.
pub fn ranks() -> Result<()> {
    let info = RankInfo::from_env()?;
    println!(
        "rank {} of {} (local rank {})",
        info.rank, info.world_size, info.local_rank
    );
    Ok(())
}
