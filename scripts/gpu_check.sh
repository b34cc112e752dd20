#!/usr/bin/env bash
# The GPU checks in one run (on a machine with CuPy and a CUDA GPU):
#   1. the test suite's device-parametrised tests on the cupy backend,
#   2. a short `--device gpu` training run of SASRec and HydraRecUni,
#   3. the attention-scaling and training-step benchmarks on the GPU.
# Usage: bash scripts/gpu_check.sh [DATA] [OUT]    (DATA: a SASRec-format ml-1m.txt(.gz))
set -uo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
out=${2:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python3 -c "import tinyhydra as th; assert th.gpu_available(), 'CuPy sees no GPU'; print('GPU:', th.backend.gpu_name())" 2>&1 | tee "$out/gpu.txt" || exit 1
python3 -m pytest -q -k "gpu" -m "not notebooks" 2>&1 | tee "$out/tests.txt"
data_flag=()
[ -n "$data" ] && data_flag=(--data "$data")
for model in sasrec hydrarec-uni; do
  python3 examples/train_ml1m.py "${data_flag[@]}" --model "$model" --device gpu --epochs 3 \
    --eval both --progress false --out "$out/$model" 2>&1 | tee "$out/train_$model.txt"
done
python3 benchmarks/attention_scaling.py --device gpu --out "$out" 2>&1 | tee "$out/attention_scaling.txt"
python3 benchmarks/train_step.py --device gpu "${data_flag[@]}" --out "$out" 2>&1 | tee "$out/train_step.txt"
