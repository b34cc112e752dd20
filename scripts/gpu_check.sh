#!/usr/bin/env bash
# The GPU checks in one run (on a machine with CuPy and a CUDA GPU), each step time-boxed
# (the caps add up to 11 minutes; the last steps are the ones to drop when time is short):
#   1. the device-parametrised tests on the cupy backend (they compare CuPy with NumPy)  <= 120 s
#   2. kernels launched by ONE training step of tinyhydra and of its PyTorch twin, counted by
#      Nsight Systems over the window that cupyx.profiler.profile() opens around that step
#      (benchmarks/train_step.py --count-kernels); skipped when `nsys` is not installed      <= 4 x 45 s
#   3. the training-step benchmark on the GPU, tinyhydra against PyTorch eager CUDA           <= 120 s
#   4. a 3-epoch `--device gpu` training of SASRec and of HydraRecUni                         <= 2 x 90 s
#   5. the attention-scaling benchmark on the GPU                                             <= 60 s
# Usage: bash scripts/gpu_check.sh [DATA] [OUT]    (DATA: a SASRec-format ml-1m.txt(.gz))
# BEFORE=<root of an older checkout> also counts the kernels of that tinyhydra (step 2: the
# contestants compared/<kind> of train_step.py --compare-with), for a before/after table.
set -uo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
out=${2:-gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
python3 -c "import cupy, numpy, tinyhydra as th; assert th.gpu_available(), 'CuPy sees no GPU'; \
print('GPU:', th.backend.gpu_name(), '| cupy', cupy.__version__, '| numpy', numpy.__version__)" \
  2>&1 | tee "$out/gpu.txt" || exit 1
data_flag=()
[ -n "$data" ] && data_flag=(--data "$data")

# 1. tests
timeout 120 python3 -m pytest -q -k "gpu" -m "not notebooks" 2>&1 | tee "$out/tests.txt"

# 2. kernels per training step
count_kernels() {  # $1: contestant (tinyhydra/softmax, torch/hydra, compared/hydra, ...), then extra flags
  local contestant=$1 report="$out/kernels/${1//\//_}"
  shift
  mkdir -p "$out/kernels"
  if ! timeout 45 nsys profile --capture-range=cudaProfilerApi \
      --capture-range-end=stop --trace=cuda,nvtx --force-overwrite=true -o "$report" \
      python3 benchmarks/train_step.py --device gpu --count-kernels "$contestant" --warmup 3 \
      --matmul-n 256 --memory-len 0 "${data_flag[@]}" "$@" --out "$out/kernels" > "$report.log" 2>&1; then
    echo "$contestant: nsys failed, see $report.log"
    return
  fi
  nsys stats --quiet --report cuda_gpu_kern_sum --format csv "$report.nsys-rep" 2>> "$report.log" |
    python3 -c 'import csv, sys
rows = [row for row in csv.DictReader(line for line in sys.stdin if "," in line) if row.get("Instances")]
total = sum(int(row["Instances"]) for row in rows)
print(f"{sys.argv[1]:<20}{total:>8} kernels, {len(rows)} distinct")' "$contestant"
}
if command -v nsys > /dev/null; then
  {
    echo "kernels launched by one training step (after 3 warm-up steps; nsys cuda_gpu_kern_sum)"
    for contestant in tinyhydra/softmax tinyhydra/hydra torch/softmax torch/hydra; do
      count_kernels "$contestant"
    done
    if [ -n "${BEFORE:-}" ]; then  # compared/<kind>: the tinyhydra of the BEFORE checkout
      for contestant in compared/softmax compared/hydra; do
        count_kernels "$contestant" --compare-with "$BEFORE"
      done
    fi
  } 2>&1 | tee "$out/kernels.txt"
else
  echo "nsys (Nsight Systems) not found: kernel counts skipped" | tee "$out/kernels.txt"
fi

# 3. training step against PyTorch eager on the same card
timeout 120 python3 benchmarks/train_step.py --device gpu --steps 20 --memory-len 2048 "${data_flag[@]}" \
  --out "$out" 2>&1 | tee "$out/train_step.txt"

# 4. short trainings
for model in sasrec hydrarec-uni; do
  timeout 90 python3 examples/train_ml1m.py "${data_flag[@]}" --model "$model" --device gpu --epochs 3 \
    --eval both --progress false --out "$out/$model" 2>&1 | tee "$out/train_$model.txt"
done

# 5. attention scaling
timeout 60 python3 benchmarks/attention_scaling.py --device gpu --lengths 256 1024 4096 16384 \
  --max-gib 40 --out "$out" 2>&1 | tee "$out/attention_scaling.txt"
