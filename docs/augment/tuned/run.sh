#!/bin/bash
# The augmentation study on the tuned baseline: each fold's released generator mixed into the
# training split of the 300-epoch CNN recipe (class-weighted, rotations/flips plus arbitrary-angle
# rotation, test-time averaging), 5 folds x 3 seeds, one thread per cell.
# Resumable: finished cells are committed under docs/augment/tuned/<study>/cells and copied back
# into runs/ before each study, so a new machine continues where the last one stopped.
# Usage: bash docs/augment/tuned/run.sh [WORKERS]   (from the repository root, in the project's venv)
set -euo pipefail
workers=${1:-2}
here=docs/augment/tuned
base="--epochs 300 --class-weighted --rotate --tta --seeds 0,1,2 --workers $workers --no-progress"

study() {  # NAME ARGS...: restore committed cells, run, keep cells and report
    local name=$1 status=0; shift
    mkdir -p runs/tuned-$name
    [ -d $here/$name/cells ] && cp -rn $here/$name/cells runs/tuned-$name/
    augment-eval "$@" $base --out runs/tuned-$name || status=$?  # failed cells: kept, retried next time
    mkdir -p $here/$name
    cp -r runs/tuned-$name/cells $here/$name/
    for f in results.json report.md gain.png errors.json; do
        [ -f runs/tuned-$name/$f ] && cp runs/tuned-$name/$f $here/$name/
    done
    return $status
}

# 1. balanced mixing at every ratio, with the cheap baseline (oversampling) in the same run
study balanced --ratio 0.5 --ratio 1 --ratio 2 --ratio 3 --ratio 5
# 2. the negative control (shuffled labels) at two ratios; shared cells come from study 1
study control --ratio 1 --ratio 3 --control shuffled-labels --no-baselines --reuse-from runs/tuned-balanced
# 3. realistic mixing, and 4. pre-train on generated then fine-tune on real
study realistic --mode realistic --ratio 1 --ratio 3 --no-baselines --reuse-from runs/tuned-balanced
study pretrain --schedule pretrain-finetune --ratio 1 --ratio 3 --no-baselines --reuse-from runs/tuned-balanced
