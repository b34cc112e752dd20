#!/usr/bin/env bash
# What one training step costs across a sweep, by benchmarks/train_step.py: ML-1M's shapes
# (B = 128, D = 50, 2 blocks, 3,416 items, full cross-entropy), the median of 3 steps by this
# process's CPU clock with one BLAS thread (waiting for a core is left out; waiting for memory
# that other runs share is not), and the peak extra memory of one step at the same shapes.
# scripts/sweeps.py reads the results.
#
# Usage: bash scripts/step_costs.sh heads     # H in 1 2 5 10 25 50 -> results/head_costs/H<H>/
#        bash scripts/step_costs.sh lengths   # L in 50 100 200 400 800 -> results/length_costs/L<L>/
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step() {  # step OUT FLAGS...: one benchmark run
  local out=$1
  shift
  python3 benchmarks/train_step.py --clock cpu --threads 1 --steps 3 --warmup 1 --profile-steps 1 \
    --torch false --engine-ops 0 --matmul-n 256 --memory-batch 128 --out "$out" "$@" > /dev/null
  echo "$out"
}
case "${1:?heads or lengths}" in
  heads)
    for h in 1 2 5 10 25 50; do
      step "results/head_costs/H$h" --models softmax,hydra --heads "$h" --memory-len 200
    done ;;
  lengths)
    for len in 50 100 200 400 800; do
      step "results/length_costs/L$len" --models softmax,hydra,decayed-hydra --seq-len "$len" --memory-len "$len"
    done ;;
  *) echo "usage: bash scripts/step_costs.sh heads|lengths" >&2; exit 2 ;;
esac
