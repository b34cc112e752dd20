#!/usr/bin/env bash
# The GPU checks in one run (on a machine with CuPy and a CUDA GPU), each step time-boxed:
#   1. the device-parametrised tests on the cupy backend (they compare CuPy with NumPy),
#   2. a short `--device gpu` training run of each encoder (2 epochs on the data),
#   3. the attention-scaling and training-step benchmarks on the GPU.
# Usage: bash scripts/gpu_check.sh [DATA] [OUT]    (DATA: a SASRec-format ml-1m.txt(.gz))
set -uo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
out=${2:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python3 -c "import cupy, numpy, tinyhydra as th; assert th.gpu_available(), 'CuPy sees no GPU'; \
print('GPU:', th.backend.gpu_name(), '| cupy', cupy.__version__, '| numpy', numpy.__version__)" \
  2>&1 | tee "$out/gpu.txt" || exit 1
timeout 180 python3 -m pytest -q -k "gpu" -m "not notebooks" 2>&1 | tee "$out/tests.txt"
data_flag=()
[ -n "$data" ] && data_flag=(--data "$data")
for model in sasrec hydrarec-uni bert4rec hydrarec-bi; do
  timeout 90 python3 examples/train_ml1m.py "${data_flag[@]}" --model "$model" --device gpu --epochs 2 \
    --eval both --progress false --out "$out/$model" 2>&1 | tee "$out/train_$model.txt"
done
timeout 90 python3 benchmarks/attention_scaling.py --device gpu --lengths 256 1024 4096 16384 \
  --max-gib 40 --out "$out" 2>&1 | tee "$out/attention_scaling.txt"
timeout 120 python3 benchmarks/train_step.py --device gpu --steps 10 "${data_flag[@]}" --out "$out" \
  2>&1 | tee "$out/train_step.txt"
