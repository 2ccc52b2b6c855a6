#!/usr/bin/env bash
# The GPU check of issue #18, prepared to run in one call on a lent GPU machine (see
# docs/cluster.md and docs/gpu.md): the paper preset on the real data, one seed, end to end,
# with the dry-run plan first and nvidia-smi samples during the run. Everything it needs is built
# here beforehand (the release `reproduce` binary, stripped, carried with the working tree);
# cached cells in $RESULTS let a second call finish a run the first one could not.
#
#   scripts/gpu_paper_check.sh <reproduce binary> <COVID-CT folder> <results folder> <out folder>
#
# Writes into <out folder>: plan.txt, run.log, nvidia-smi.csv (one sample a second), report.md,
# results.json (when the run finished) and timing.txt.
set -uo pipefail
bin="$1" data="$2" results="$3" out="$4"
mkdir -p "$out" "$results"

"$bin" --data "$data" --preset paper --out "$results" --dry-run > "$out/plan.txt" 2>&1

nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used,power.draw \
  --format=csv -l 1 > "$out/nvidia-smi.csv" 2>/dev/null &
smi=$!
start=$(date +%s)
"$bin" --data "$data" --preset paper --seeds 1 --out "$results" > "$out/run.log" 2>&1
status=$?
end=$(date +%s)
kill "$smi" 2>/dev/null
echo "status $status, wall $((end - start)) s" > "$out/timing.txt"
cp "$results/report.md" "$results/results.json" "$out/" 2>/dev/null
exit "$status"
