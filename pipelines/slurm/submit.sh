#!/usr/bin/env bash
# Submits a recipe to Slurm: one job array of N tasks per sharded step (repos,
# tokenize, chat, filter, sample, pack), one plain job per single-task step (mix),
# each waiting for the previous one (--dependency=afterok), then a merge job.
#
#   pipelines/slurm/submit.sh pipelines/corpus.toml 8 [extra sbatch options...]
#
# Steps already complete for N tasks are not submitted (re-submitting after a
# failure resumes: complete tasks are skipped inside the jobs too). The data
# folder must be on a file system every node sees. PROLONG_DATA names the
# binary (default: prolong-data on PATH); `${DATA}` and other recipe
# variables come from the environment, which sbatch exports to the jobs.
set -euo pipefail
RECIPE="${1:?usage: submit.sh RECIPE N [sbatch options...]}"
N="${2:?usage: submit.sh RECIPE N [sbatch options...]}"
shift 2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${PROLONG_DATA:-prolong-data}"
mkdir -p logs
dep=()
prev=""
# `run --list`: NAME STAGE sharded|single DONE/TOTAL tasks done OUT
while read -r name stage kind progress _; do
  done_n="${progress%/*}"; total="${progress#*/}"
  if [ "$done_n" = "$total" ]; then
    echo "skip   $name ($stage): complete"
    continue
  fi
  if [ "$kind" = sharded ]; then
    id=$(sbatch --parsable "${dep[@]}" --array="0-$((N - 1))" --job-name="pd-$name" "$@" \
      "$HERE/step.sbatch" "$RECIPE" "$name" "$N")
    echo "submit $name ($stage): array job $id, $N tasks"
  else
    id=$(sbatch --parsable "${dep[@]}" --job-name="pd-$name" "$@" \
      "$HERE/step.sbatch" "$RECIPE" "$name" "$N")
    echo "submit $name ($stage): job $id"
  fi
  prev="${id%%;*}"
  dep=(--dependency="afterok:$prev")
done < <("$BIN" run "$RECIPE" --list --world-size "$N")
id=$(sbatch --parsable "${dep[@]}" --job-name=pd-merge "$@" "$HERE/step.sbatch" "$RECIPE" --all "$N")
echo "submit merge: job $id (after ${prev:-nothing})"
