#!/bin/bash
# The worked example of docs/tutorials/own-survey.md: a 2-class FRI/FRII set written as a
# class folder of FITS files, then every command run on that folder exactly as a user with their
# own cutouts would. One thread per process; about 80 CPU-minutes in all on a 2-core CPU.
# Usage: bash docs/own-data/run.sh   (from the repository root, in the project's venv)
set -euo pipefail
export OMP_NUM_THREADS=1
data=runs/first-fr-fits

# 1. the survey: 495 FRI + 924 FRII FITS cutouts, 300x300 px, one subfolder per class
[ -d $data ] || wgan-data export-first $data --classes FRI,FRII

# 2. the baseline classifier on the survey's own 5 folds (the split file is drawn on first use)
classifier-train --data $data --folds 0,1,2,3,4 --resolution 64 --epochs 300 --class-weighted --rotate --tta \
    --seed 0 --no-progress --out runs/fr-cnn

# 3. fold 0's generator, trained on fold 0's training images only
wgan-train --preset small-resize --data $data --fold 0 --iters 2500 --sample-every 500 --checkpoint-every 500 --keep 1 \
    --run-dir runs/fr-gen-fold0 --resume if-any --no-progress

# 4. its quality per class, in the feature space of the survey's own fold-0 classifier
wgan-eval --checkpoint runs/fr-gen-fold0/generator.pt --extractor runs/fr-cnn/fold0/model.pt --n-per-class 400 \
    --out runs/fr-gen-fold0/eval

# 5. what its images do to that classifier on fold 0, 3 seeds, with the shuffled-label control
augment-eval --data $data --checkpoint 'runs/fr-gen-fold{fold}/generator.pt' --folds 0 --seeds 0,1,2 \
    --ratio 0.5 --ratio 1 --ratio 2 --control shuffled-labels --epochs 300 --class-weighted --rotate --tta \
    --workers 2 --no-progress --pool-draws nested --out runs/fr-augment  # nested: as the committed report was drawn
