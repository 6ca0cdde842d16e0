#!/bin/bash
# A declared study (FOLDER/plan.toml), resumable: its finished cells are kept in FOLDER/cells and
# copied back into runs/NAME first, so a rerun on a new machine continues where the last stopped;
# the report is copied back into FOLDER when every cell has run.
# Usage: bash docs/augment/run_plan.sh FOLDER [WORKERS] [-- AUGMENT-EVAL OPTIONS]
# (from the repository root, in the project's venv). Options after `--` go to augment-eval, e.g.
# where the cells run: `-- --scheduler tcp://host:8786` (docs/guide/cluster.md).
set -euo pipefail
here=${1:?usage: run_plan.sh FOLDER [WORKERS] [-- AUGMENT-EVAL OPTIONS]}
workers=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = -- ] && shift
run=runs/$(basename "$here")
mkdir -p "$run"
# the reference classifiers of the fidelity filter (filters/) stay under runs/: model files do not
# enter the repository, and a new machine retrains the ones its unfinished cells need
[ -d "$here/cells" ] && cp -rn "$here/cells" "$run/"
status=0
augment-eval --plan "$here/plan.toml" --out "$run" --workers "$workers" --no-progress "$@" || status=$?
[ -d "$run/cells" ] && cp -r "$run/cells" "$here/"
for f in plan.json results.json report.md gain.png errors.json; do
    [ -f "$run/$f" ] && cp "$run/$f" "$here/"
done
exit $status
