#!/usr/bin/env bash
# Release the generator of cv fold K from its run in runs/NAME-cvK (NAME: asinh for the
# small-asinh preset, resize for small-resize; COMMAND=... overrides the training command
# recorded on the card): score it (with the train-on-generated usefulness check), copy it to
# checkpoints/generator-cvK.pt with its card, register it as fold K's default for augment-eval,
# and keep the run's latest training state under checkpoints/training/NAME-cvK/ so it can be
# continued.
#
#   bash checkpoints/training/release_fold.sh 0 asinh      # runs/asinh-cv0
#   bash checkpoints/training/release_fold.sh 2 resize     # runs/resize-cv2 (replaces fold 2's release)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: release_fold.sh FOLD NAME   (NAME: asinh or resize; runs/NAME-cvFOLD)" >&2; exit 2; }
K=$1
NAME=$2
RUN=runs/$NAME-cv$K
KEEP=checkpoints/training/$NAME-cv$K
COMMAND=${COMMAND:-"OMP_NUM_THREADS=1 wgan-train --preset small-$NAME --split cv --fold $K --kimg 3000 --iters 2500 --eval-every 500 --eval-n 200 --sample-every 500 --checkpoint-every 500 --keep 1 --run-dir $RUN"}
TARGET=checkpoints/generator-cv$K
[ "$K" = 0 ] && TARGET=checkpoints/generator

wgan-eval --checkpoint "$RUN/generator-best.pt" --n 400 --tstr-epochs 30 --out "$RUN/eval-best"
python -m wgan.release "$RUN/generator-best.pt" "$RUN/eval-best/scores.json" "$TARGET" --command "$COMMAND"
python -m wgan.registry "$TARGET.json" --fold-default

mkdir -p "$KEEP"
rm -f "$KEEP"/training-state-*.pt
cp "$RUN"/checkpoints/training-state-*.pt "$RUN"/{config.json,stats.jsonl,generator-best.pt} "$KEEP"/
rm -rf "$KEEP/grids" && cp -r "$RUN/grids" "$KEEP/grids"
