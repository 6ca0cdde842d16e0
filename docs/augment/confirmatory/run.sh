#!/bin/bash
# The confirmatory study declared in plan.toml (committed before any of its cells ran), in two
# resumable stages; rerun the same command after an interruption and it continues.
#   1. generator replicas: each fold's released recipe retrained with seeds 1 and 2 (one thread
#      each), scored at matched size with the copying test, released under checkpoints/replicas/
#      with cards and registered as first-cv<k>-s<seed>;
#   2. the study: augment-eval --plan plan.toml through docs/augment/run_plan.sh, which keeps the
#      finished cells under docs/augment/confirmatory/ and copies them back into runs/ first, so a
#      new machine continues.
# Usage: bash docs/augment/confirmatory/run.sh [WORKERS] [replicas|study|all] [-- AUGMENT-EVAL OPTIONS]
# (from the repository root, in the project's venv; default: both stages). Options after `--` go to
# augment-eval, e.g. where the cells run: `-- --scheduler tcp://host:8786` (docs/guide/cluster.md).
set -euo pipefail
workers=${1:-2}
stage=${2:-all}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = -- ] && shift
here=docs/augment/confirmatory

replica() {  # FOLD SEED: train (resumed from its last state), score, release, register
    local fold=$1 seed=$2 run=runs/asinh-cv$1-s$2 target=checkpoints/replicas/generator-cv$1-s$2
    [ -f $target.pt ] || [ -f $target.safetensors ] && return 0  # released (folds 0-3 as .pt, fold 4 as .safetensors)
    local command="OMP_NUM_THREADS=1 wgan-train --preset small-asinh --split cv --fold $fold --seed $seed --kimg 3000 \
--iters 2500 --eval-every 500 --eval-n-per-class 200 --sample-every 500 --checkpoint-every 500 --keep 1 --run-dir $run"
    OMP_NUM_THREADS=1 wgan-train --preset small-asinh --split cv --fold $fold --seed $seed --kimg 3000 --iters 2500 \
        --eval-every 500 --eval-n-per-class 200 --sample-every 500 --checkpoint-every 500 --keep 1 --run-dir $run \
        --resume if-any --no-progress
    # scored as releases are (wgan-eval --n-per-class 400 --tstr-epochs 30), released and registered in the
    # project's registry (the default would be the user's)
    OMP_NUM_THREADS=1 radiogan-release generator $run/generator-best.pt $target --command "$command" --fold-default \
        --registry checkpoints/registry.json
}

if [ "$stage" != study ]; then
    # two chains of one thread each (seed 1 and seed 2), so two cores train at once
    for seed in 1 2; do
        ( for fold in 0 1 2 3 4; do replica $fold $seed; done ) &
    done
    wait
fi
if [ "$stage" != replicas ]; then
    bash docs/augment/run_plan.sh $here "$workers" -- "$@"
fi
