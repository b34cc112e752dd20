#!/usr/bin/env bash
# BERT4Rec and HydraRecBi on one GPU under a wall-clock budget: four runs side by side
# (the default size, dim 64, and dim 256), all with masked-last cloze instances.
# Each run stops itself (--max-minutes), evaluates its best-validation weights and writes
# OUT/<run>/metrics.json; `--resume` with the same flags continues any of them.
# The four runs share the GPU and the CPU, so their seconds per epoch are those of a
# shared machine, not of one run alone.
# Usage: bash scripts/gpu_bidirectional.sh MINUTES DATA [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?minutes per run}
data=${2:?SASRec-format ml-1m.txt(.gz)}
out=${3:-runs}
export PYTHONUNBUFFERED=1
common=(--data "$data" --device gpu --mask-last 1.0 --eval-every 2 --patience 10
        --progress false --max-minutes "$minutes")
# a hard stop a minute after the soft one: SIGTERM saves a checkpoint, --resume goes on
hard_stop=$(python3 -c "print(int(60 * $minutes) + 60)")
run() {  # run NAME FLAGS...
  local name=$1
  shift
  mkdir -p "$out/$name"
  timeout "$hard_stop" python3 examples/train_ml1m.py "${common[@]}" "$@" --out "$out/$name" \
    > "$out/$name/train.log" 2>&1
  echo "$name: exit $? ($(grep -c '^epoch' "$out/$name/train.log") epochs)"
}
run gpu-bert4rec --model bert4rec &
run gpu-hydrarec-bi --model hydrarec-bi &
run gpu-bert4rec-d256 --model bert4rec --dim 256 --heads 4 &
run gpu-hydrarec-bi-d256 --model hydrarec-bi --dim 256 &
wait
