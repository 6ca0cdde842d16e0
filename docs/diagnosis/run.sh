#!/usr/bin/env bash
# The protocol diagnosis of the README section "Why generated images help or hurt": the
# published mixing protocol as closely as augment-eval's options allow, then one change at a
# time, with the shuffled-label control; each fold uses its own released generator.
#
#   bash docs/diagnosis/run.sh            # all five folds, seeds 0-2, 2 workers
#   FOLDS=0,1 WORKERS=1 bash docs/diagnosis/run.sh   # a subset; rerunning with more folds reuses the cells
#
# Every arm shares the real-only cells of the first study (same identity), so they are
# trained once. Results: runs/diag/<study>/ and docs/diagnosis/table.md.
set -euo pipefail
FOLDS=${FOLDS:-0,1,2,3,4}
WORKERS=${WORKERS:-2}
OUT=${OUT:-runs/diag}
BASE=(--folds "$FOLDS" --seeds 0,1,2 --epochs 30 --class-weighted --dihedral --no-baselines --mode balanced
      --workers "$WORKERS" --no-progress)
PUBLISHED=(--pool fresh-per-batch --generated-augment none)

study() {  # NAME OPTIONS...: one augment-eval, after borrowing the finished real-only cells
    local name=$1; shift
    if [ "$name" != published ] && [ -d "$OUT/published/cells/r=0" ]; then
        mkdir -p "$OUT/$name/cells" && cp -rn "$OUT/published/cells/r=0" "$OUT/$name/cells/"
    fi
    augment-eval "${BASE[@]}" "$@" --out "$OUT/$name"
}

study published "${PUBLISHED[@]}" --ratio 1 --ratio 3 --control shuffled-labels
study fixed-pool --pool fixed --generated-augment none --ratio 1
study augment-generated --pool fresh-per-batch --generated-augment same-as-real --ratio 1
study fidelity-filter "${PUBLISHED[@]}" --fidelity-filter 0.5 --ratio 1
study equal-real-passes "${PUBLISHED[@]}" --budget equal-real-passes --ratio 1

python -m augment.compare published="$OUT/published" fixed-pool="$OUT/fixed-pool" \
    augment-generated="$OUT/augment-generated" fidelity-filter="$OUT/fidelity-filter" \
    equal-real-passes="$OUT/equal-real-passes" --out docs/diagnosis/table.md
