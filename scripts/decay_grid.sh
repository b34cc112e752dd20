#!/usr/bin/env bash
# The decayed-Hydra comparison on a named data set (ml-1m, ml-20m, beauty): every row from
# scratch, one recipe per direction, explicit epochs (no wall-clock limits). On ML-1M each row
# trains into runs/<direction>/<row> and, when it has finished, copies its metrics.json to
# results/decay-grid-<row>.json; on another data set into runs/<dataset>/<direction>/<row> and
# results/decay-grid-<dataset>-<row>.json.
# A row whose folder holds a checkpoint continues it with --resume (exact: a resumed run is
# the run that never stopped), so running this script again picks up where it was stopped.
#
# Usage: bash scripts/decay_grid.sh DATASET [ROW ...]   (no ROW: the data set's rows in order)
#   DATASET: ml-1m, ml-20m or beauty; ROW: a name below, e.g. sasrec hydrarec-uni-decay
#   DATA=PATH: train on that local file of the data set instead of downloading it
# Run two rows at once on a 2-core machine, each with one BLAS thread (set here).
# DEVICE=gpu trains on CuPy instead, into runs/<direction>-gpu/<row> and
# results/decay-grid-gpu-<row>.json (a GPU row is a run of its own, never mixed with a CPU one).
# SEED=N trains the rows with --seed N (default 42) as rows of their own, <row>-seedN: how far
# another seed alone moves a row.
# DRY_RUN=1 prints each row's command instead of running it.
set -uo pipefail
cd "$(dirname "$0")/.."
dataset=${1:?a data set: ml-1m, ml-20m or beauty}
shift
source=(--dataset "$dataset")
[ -n "${DATA:-}" ] && source+=(--data "$DATA")
export OPENBLAS_NUM_THREADS=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's tinyhydra, installed or not

# causal recipe: full cross-entropy, random training windows, weight averaging, 100 epochs
causal=(--epochs 100 --eval-every 2 --patience 10 --random-window 1 --ema 0.998)
# bidirectional recipe (BERT4Rec's best): masked-last cloze instances, random windows,
# weight averaging, 150 epochs
bidirectional=(--epochs 150 --eval-every 2 --patience 10 --mask-last 1 --random-window 1 --ema 0.998)

declare -A rows=(
  [sasrec]="causal --model sasrec"
  [hydrarec-uni]="causal --model hydrarec-uni"
  [hydrarec-uni-decay]="causal --model hydrarec-uni-decay"
  [hydrarec-uni-decay-fixed]="causal --model hydrarec-uni-decay --fixed-decay"
  [hydrarec-uni-conv]="causal --model hydrarec-uni --conv 4"
  [hydrarec-uni-decay-conv]="causal --model hydrarec-uni-decay --conv 4"
  [bert4rec]="bidirectional --model bert4rec"
  [hydrarec-bi]="bidirectional --model hydrarec-bi"
  [hydrarec-bi-decay]="bidirectional --model hydrarec-bi-decay"
  # long histories (most ML-1M users fit whole in 800 items): L = 200 against L = 800 after
  # the same 30 epochs (on 2 CPU cores an L = 800 SASRec epoch takes about 5 minutes)
  [sasrec-e30]="causal --model sasrec --epochs 30"
  [hydrarec-uni-decay-e30]="causal --model hydrarec-uni-decay --epochs 30"
  [sasrec-len800]="causal --model sasrec --max-len 800 --epochs 30"
  [hydrarec-uni-decay-len800]="causal --model hydrarec-uni-decay --max-len 800 --epochs 30"
  [hydrarec-uni-e30]="causal --model hydrarec-uni --epochs 30"
)
# the head-count figure (Hydra's central question, asked of recommendation): 30 epochs, D = 50,
# H heads of D/H features each; H = 1 softmax is sasrec-e30, H = 50 cosine is hydrarec-uni-e30
for h in 2 5 10 25 50; do rows[sasrec-e30-h$h]="causal --model sasrec --epochs 30 --heads $h"; done
for h in 1 2 5 10 25; do rows[hydrarec-uni-e30-h$h]="causal --model hydrarec-uni --epochs 30 --heads $h"; done
# the same with the cosine map normalised per head, the usual multi-head way (at H = 1 the two are one)
for h in 2 5 10 25; do
  rows[hydrarec-uni-e30-h$h-perhead]="causal --model hydrarec-uni --epochs 30 --heads $h --head-norm per_head"
done
# short against long sequences: 30 epochs, L in {50, 100, 200, 400, 800} (L = 200 is the e30 row)
for len in 50 100 400 800; do
  rows[sasrec-len$len]="causal --model sasrec --max-len $len --epochs 30"
  rows[hydrarec-uni-len$len]="causal --model hydrarec-uni --max-len $len --epochs 30"
  rows[hydrarec-uni-decay-len$len]="causal --model hydrarec-uni-decay --max-len $len --epochs 30"
done
# the long-budget pair: up to 300 epochs, early stopping on validation NDCG@10
rows[sasrec-e300]="causal --model sasrec --epochs 300"
rows[hydrarec-uni-decay-e300]="causal --model hydrarec-uni-decay --epochs 300"
# the same pair with the learning rate annealed to 0 over the 300 epochs, both models alike
rows[sasrec-e300-cos]="causal --model sasrec --epochs 300 --lr-schedule cosine"
rows[hydrarec-uni-decay-e300-cos]="causal --model hydrarec-uni-decay --epochs 300 --lr-schedule cosine"
# and without early stopping (150 validations cover all 300 epochs), so the rate does reach 0:
# patience 10 ended the -cos rows at epochs 188 and 190, the rate still 0.3x its start
rows[sasrec-e300-cos-full]="causal --model sasrec --epochs 300 --lr-schedule cosine --patience 150"
rows[hydrarec-uni-decay-e300-cos-full]="causal --model hydrarec-uni-decay --epochs 300 --lr-schedule cosine --patience 150"
# the whole comparison, for any data set: both directions, plain and decayed Hydra
grid=(sasrec hydrarec-uni hydrarec-uni-decay bert4rec hydrarec-bi hydrarec-bi-decay)
# ML-1M's rows in the order they were first trained
ml1m=(sasrec hydrarec-uni-decay hydrarec-uni hydrarec-uni-conv hydrarec-uni-decay-conv
       hydrarec-uni-decay-fixed bert4rec hydrarec-bi-decay hydrarec-bi sasrec-e30
       hydrarec-uni-decay-e30 sasrec-len800 hydrarec-uni-decay-len800)

run() {  # run ROW
  local row=$1 spec=${rows[$1]:?unknown row $1 (see the list in this script)}
  local direction=${spec%% *} flags=${spec#* }
  local -n recipe=$direction
  local device=${DEVICE:-cpu} suffix="" resume=() on=() name=$row
  [ "$device" = cpu ] || { suffix="-$device"; on=(--device "$device"); }
  [ -n "${SEED:-}" ] && { name=$row-seed$SEED; on+=(--seed "$SEED"); }
  local where="" tag=""
  [ "$dataset" = ml-1m ] || { where="$dataset/"; tag="-$dataset"; }
  local out="runs/$where$direction$suffix/$name" result="results/decay-grid$suffix$tag-$name.json"
  [ -f "$out/checkpoint.npz" ] && resume=(--resume)
  # shellcheck disable=SC2206  # $flags is a list of flags
  local command=(examples/train.py "${source[@]}" "${recipe[@]}" $flags "${on[@]}"
                 --progress false --out "$out" "${resume[@]}")
  if [ -n "${DRY_RUN:-}" ]; then  # print the command instead (tests check every row's flags)
    echo "${command[*]}"
    return
  fi
  mkdir -p "$out"
  python3 "${command[@]}" >> "$out/train.log" 2>&1
  local status=$?
  if [ "$status" -eq 0 ]; then
    cp "$out/metrics.json" "$result"
  fi
  echo "$name: exit $status ($(grep -c '^epoch' "$out/train.log") epochs logged)"
}

main() {
  local order=("${grid[@]}")
  [ "$dataset" = ml-1m ] && order=("${ml1m[@]}")
  for row in "${@:-${order[@]}}"; do
    run "$row"
  done
}
# one line, read whole before it runs: editing this file while rows train cannot change them
main "$@"; exit $?
