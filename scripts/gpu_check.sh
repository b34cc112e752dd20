#!/usr/bin/env bash
# The GPU checks in one call of a lent GPU machine (CuPy, a CUDA GPU; PyTorch for the
# comparison and the kernel counts). The timed parts run first, alone on the GPU; then the
# decay-grid rows train while the kernels are counted and the tests run:
#   1. benchmarks/train_step.py: a training step of SASRec, HydraRecUni and DecayedHydraRecUni
#      against PyTorch eager CUDA (and, with BEFORE, an older tinyhydra), interleaved  <= 120 s
#   1b. benchmarks/scan_forms.py: the prefix sum's loop and matrix forms                <= 60 s
#   2. a 3-epoch `--device gpu` training of SASRec alone (seconds per epoch)             <= 60 s
#   3. GRID_ROWS (ML-1M rows of scripts/decay_grid.sh, DEVICE=gpu) train one after another,
#      or in GRID_PARALLEL chains side by side (on one H200, ten rows side by side ran about
#      1.2 epochs per second in all, one row alone 1.7); rows still training DEADLINE
#      seconds after the start are stopped (each keeps its last epoch's checkpoint, so the
#      same command later continues it)
#   4. meanwhile: kernels launched by one training step of each contestant (train_step.py
#      --count-kernels all: CUPTI through PyTorch's profiler)                            <= 90 s
#   5. meanwhile: the device-parametrised tests                                          <= 240 s
# Usage: [BEFORE=<older checkout root>] [GRID_ROWS="row ..."] [GRID_PARALLEL=1] [SEED=N] [DEADLINE=480] \
#          bash scripts/gpu_check.sh DATA [OUT]      (DATA: a SASRec-format ml-1m.txt(.gz))
# SMOKE=1 runs every part on the CPU at toy sizes (no GPU needed): a check of this script.
set -uo pipefail
cd "$(dirname "$0")/.."
data=${1:?SASRec-format ml-1m.txt(.gz)}
out=${2:-gpu_check}
deadline=$((SECONDS + ${DEADLINE:-480}))
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
device=gpu step_flags=(--steps 15 --warmup 3 --profile-steps 1 --memory-len 0) epochs=3
if [ -n "${SMOKE:-}" ]; then
  device=cpu step_flags=(--quick) epochs=1
  if [ -n "${GRID_ROWS:-}" ] && [ -d runs ]; then
    echo "SMOKE=1 with GRID_ROWS would train into this checkout's runs/ (the CPU rows): run it in a scratch clone"
    exit 2
  fi
else
  python3 -c "import cupy, numpy, tinyhydra as th; assert th.gpu_available(), 'CuPy sees no GPU'; \
print('GPU:', th.backend.gpu_name(), '| cupy', cupy.__version__, '| numpy', numpy.__version__)" \
    2>&1 | tee "$out/gpu.txt" || exit 1
fi
before=()
[ -n "${BEFORE:-}" ] && before=(--compare-with "$BEFORE")
part() { echo; echo "== $1 ($SECONDS s)"; }

part "1. training step against PyTorch${BEFORE:+ and $BEFORE}"
timeout 120 python3 benchmarks/train_step.py --device "$device" --data "$data" "${step_flags[@]}" \
  --models softmax,hydra,decayed-hydra --engine-ops 0 "${before[@]}" --out "$out" 2>&1 |
  tee "$out/train_step.txt"

part "1b. the two forms of the prefix sum (tinyhydra.attention.scan)"
scan_flags=()
[ -n "${SMOKE:-}" ] && scan_flags=(--quick)
timeout 60 python3 benchmarks/scan_forms.py --device "$device" "${scan_flags[@]}" --out "$out" 2>&1 |
  tee "$out/scan_forms.txt"

part "2. SASRec alone, $epochs epochs"
timeout 60 python3 examples/train_ml1m.py --data "$data" --model sasrec --device "$device" \
  --epochs "$epochs" --eval both --progress false --out "$out/sasrec" 2>&1 | tee "$out/train_sasrec.txt"

read -ra grid_rows <<< "${GRID_ROWS:-}"
parallel=${GRID_PARALLEL:-1}
part "3. grid rows ${GRID_ROWS:-(none)}, $parallel at a time; kernels and tests meanwhile"
pids=()
for ((chain = 0; chain < parallel && chain < ${#grid_rows[@]}; chain++)); do
  chain_rows=()  # rows chain, chain + parallel, ...: one after another
  for ((i = chain; i < ${#grid_rows[@]}; i += parallel)); do chain_rows+=("${grid_rows[i]}"); done
  # setsid: each chain in a process group of its own, to stop it (and only it) at the deadline
  DATA=$data DEVICE=$device setsid bash scripts/decay_grid.sh ml-1m "${chain_rows[@]}" \
    > "$out/grid-chain-$chain.txt" 2>&1 &
  pids+=($!)
done
part "4. kernels per training step (counts do not depend on the load)"
if [ -n "${SMOKE:-}" ]; then
  echo "(skipped: counting kernels needs a GPU)" | tee "$out/kernels.txt"
else
  timeout 90 python3 benchmarks/train_step.py --device gpu --data "$data" --count-kernels all \
    --models softmax,hydra,decayed-hydra --warmup 3 --matmul-n 256 "${before[@]}" --out "$out" 2>&1 |
    tee "$out/kernels.txt"
fi

part "5. tests on the GPU"
test_filter=(-k gpu)
[ -n "${SMOKE:-}" ] && test_filter=(-k "gpu and elementwise")
timeout 240 python3 -m pytest -q -p no:cacheprovider "${test_filter[@]}" -m "not notebooks" 2>&1 |
  tee "$out/tests.txt"
while [ "${#pids[@]}" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
  running=()
  for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && running+=("$pid"); done
  pids=("${running[@]}")
  [ "${#pids[@]}" -gt 0 ] && sleep 5
done
for pid in "${pids[@]}"; do  # past the deadline: stop the chain (its row keeps its last checkpoint)
  echo "deadline: stopping the grid chain of process $pid"
  kill -TERM -- "-$pid" 2> /dev/null
done
wait
part "grid rows"
cat "$out"/grid-chain-*.txt 2> /dev/null
suffix=-$device
[ "$device" = cpu ] && suffix=""  # SMOKE=1: the rows are CPU rows (scripts/decay_grid.sh)
for row in "${grid_rows[@]}"; do
  row=$row${SEED:+-seed$SEED}  # SEED=N: the rows of another seed (scripts/decay_grid.sh)
  grep '^epoch' "runs/causal$suffix/$row/train.log" "runs/bidirectional$suffix/$row/train.log" \
    2> /dev/null | tail -n 1
done
part "done"
