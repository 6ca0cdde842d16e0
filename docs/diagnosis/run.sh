#!/usr/bin/env bash
# The protocol diagnosis of docs/studies/diagnosis.md. Each fold
# uses its own released generator (first-cv<k>); 5 folds x seeds 0-2; base settings class
# weights + rotations/flips, 30 passes, balanced mixing, 64 px, one thread per cell. The
# reference protocol is the published one except for the pool (generated images enter as drawn,
# fixed pool: fresh-per-batch costs a generator pass per image shown, so it gets one arm of its
# own); then one change at a time, and the shuffled-label control.
#
#   bash docs/diagnosis/run.sh                         # all five folds, 2 workers
#   FOLDS=0,1 WORKERS=1 bash docs/diagnosis/run.sh     # a subset; a rerun with more folds reuses the cells
#
# Studies share the finished cells that are the same computation (the real-only arm, and the
# reference r=2 arm for the control), so those are trained once; the augmentation study trains
# its own real-only arm (its identity records the generated-image augmentation setting).
# Results: runs/diag/<study>/, the table in docs/diagnosis/table.md.
set -euo pipefail
FOLDS=${FOLDS:-0,1,2,3,4}
WORKERS=${WORKERS:-2}
OUT=${OUT:-runs/diag}
COMMON=(--folds "$FOLDS" --seeds 0,1,2 --epochs 30 --class-weighted --dihedral --no-baselines --mode balanced
        --workers "$WORKERS" --no-progress --pool-draws nested)  # as the committed cells were drawn
AS_DRAWN=(--generated-augment none)

study() {  # NAME CELLS-TO-BORROW OPTIONS...: one augment-eval, after borrowing finished cells
    local name=$1 borrow=$2; shift 2
    for item in $borrow; do  # ARM (from the reference study) or STUDY:ARM
        local from=reference arm=$item
        if [[ $item == *:* ]]; then from=${item%%:*}; arm=${item#*:}; fi
        if [ -d "$OUT/$from/cells/$arm" ]; then
            mkdir -p "$OUT/$name/cells" && cp -rn "$OUT/$from/cells/$arm" "$OUT/$name/cells/"
        fi
    done
    augment-eval "${COMMON[@]}" "$@" --out "$OUT/$name"
}

study reference "" "${AS_DRAWN[@]}" --pool fixed --ratio 0.5 --ratio 1 --ratio 2
study control "r=0 r=2" "${AS_DRAWN[@]}" --pool fixed --ratio 2 --control shuffled-labels
study fresh-per-batch "r=0" "${AS_DRAWN[@]}" --pool fresh-per-batch --ratio 1
study augment-generated "" --generated-augment same-as-real --pool fixed --ratio 2
study fidelity-filter "r=0" "${AS_DRAWN[@]}" --pool fixed --fidelity-filter 0.5 --ratio 2
study equal-real-passes "r=0" "${AS_DRAWN[@]}" --pool fixed --budget equal-real-passes --ratio 2

# the two changes that reduced the harm, together
study combined "augment-generated:r=0" --generated-augment same-as-real --pool fixed --fidelity-filter 0.5 --ratio 1
augment-tools compare reference="$OUT/reference" control="$OUT/control" fresh-per-batch="$OUT/fresh-per-batch" \
    augment-generated="$OUT/augment-generated" fidelity-filter="$OUT/fidelity-filter" \
    equal-real-passes="$OUT/equal-real-passes" combined="$OUT/combined" --out docs/diagnosis/table.md
augment-tools predictors "$OUT/reference" r=2 checkpoints/generator.json checkpoints/generator-cv*.json \
    --out docs/diagnosis/predictors.md
