#!/usr/bin/env bash
# Starts a one-node Slurm on this machine for the Slurm tests (Debian's slurmd,
# slurmctld and munge; installed here if missing and we are root), and prints the
# path of its slurm.conf on stdout. Everything it writes lives under $1 (default
# target/slurm). `scripts/slurm-up.sh --down DIR` stops it; `--install` only installs
# the packages (what `make test` runs first, so that no test waits on apt-get).
#
# One node with this machine's CPUs, one partition, no accounting, no cgroups: what
# `srun -n 2` and a job array need, nothing more. Exits non-zero, saying why on
# stderr, when it cannot start it (not root, no package, a daemon that dies): the
# tests that use it then say they skipped.
set -euo pipefail

if [ "${1:-}" = "--down" ]; then
  dir="${2:-target/slurm}"
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  exit 0
fi

install_only=0
if [ "${1:-}" = "--install" ]; then install_only=1; set -- "$(mktemp -d)"; fi
dir="$(mkdir -p "${1:-target/slurm}" && cd "${1:-target/slurm}" && pwd)"
say() { echo "slurm-up: $*" >&2; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "slurmctld/slurmd/munged missing and cannot install them (need root and apt-get)"; exit 1
  fi
  say "installing Debian's slurmd slurmctld slurm-client munge"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      slurmd slurmctld slurm-client munge; } >"$dir/install.log" 2>&1 \
    || { say "apt-get install failed (see $dir/install.log)"; exit 1; }
fi
if [ "$install_only" = 1 ]; then rm -rf "$dir"; exit 0; fi
if [ "$(id -u)" != 0 ]; then say "not root: slurmd must run as root"; exit 1; fi

node="$(hostname -s)"
cpus="$(nproc)"
mkdir -p "$dir/spool" "$dir/state" "$dir/log" "$dir/munge"
chown munge:munge "$dir/munge" 2>/dev/null || true
conf="$dir/slurm.conf"
cat >"$conf" <<CONF
ClusterName=prolong-test
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPort=16817
SlurmdPort=16818
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/spool
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$node CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

# munge: a private daemon on a private socket, so a system munged is never disturbed.
if ! [ -S "$dir/munge/munge.socket" ] || ! munge -n -S "$dir/munge/munge.socket" >/dev/null 2>&1; then
  munged --force -S "$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" 2>>"$dir/log/munged.err" \
    || { say "munged did not start (see $dir/log)"; exit 1; }
fi
export SLURM_CONF="$conf"
# Fresh state each time: an earlier run's jobs must not come back.
[ -s "$dir/slurmctld.pid" ] && kill "$(cat "$dir/slurmctld.pid")" 2>/dev/null || true
[ -s "$dir/slurmd.pid" ] && kill "$(cat "$dir/slurmd.pid")" 2>/dev/null || true
rm -rf "$dir/state"/* "$dir/spool"/*
slurmctld -c -f "$conf" || { say "slurmctld did not start (see $dir/log)"; exit 1; }
slurmd -f "$conf" || { say "slurmd did not start (see $dir/log)"; exit 1; }
# Wait (by state, bounded in tries) until the node takes work.
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "$conf"; exit 0
  fi
  sleep 1
done
say "the node never became idle: $(sinfo -h -o '%T %E' 2>&1 | head -1) (see $dir/log)"
exit 1
