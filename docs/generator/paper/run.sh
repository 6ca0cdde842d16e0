#!/bin/bash
# The published-size generator on one GPU: the `paper` preset (128 px, the published networks) on
# cv fold 0 with the published schedule (batch 300, n_critic 5, 100k critic steps = 20k generator
# iterations), trained in chunks shorter than a device lease. Every call trains for at most CHUNK
# seconds; then SIGTERM makes wgan-train write its training state and stop, and the next call
# continues it (--resume if-any). The run and its latest state stay under runs/, out of the package.
# Once the run has reached its length, the next call scores its best generator as releases are
# scored (wgan-eval --n-per-class 400 --tstr-epochs 30: matched-size floors and the copying test)
# and writes the comparison with first-cv0's card to docs/generator/paper/comparison.json; it is
# released beside first-cv0 (radiogan-release generator) only if it is closer to its floors.
# Usage (repository root, project venv, a GPU): bash docs/generator/paper/run.sh [CHUNK_SECONDS]   (default 540)
set -euo pipefail
chunk=${1:-540}
run=runs/paper-cv0
here=docs/generator/paper
if [ ! -f $run/generator.pt ]; then  # written when the run reaches its length
    status=0
    timeout --signal=TERM --kill-after=120 "$chunk" wgan-train --preset paper --split cv --fold 0 --batch-size 300 \
        --iters 20000 --eval-every 1000 --eval-n-per-class 200 --sample-every 1000 --checkpoint-every 250 --keep 2 \
        --run-dir $run --resume if-any --no-progress || status=$?
    # 124: this chunk's time ran out (its state is written); anything else non-zero is a failure
    if [ $status -eq 124 ]; then
        echo "chunk done; run this again to continue $run"
        exit 0
    fi
    if [ $status -ne 0 ]; then
        exit $status
    fi
fi
[ -f $run/release-eval/scores.json ] || wgan-eval --checkpoint $run/generator-best.pt --n-per-class 400 \
    --tstr-epochs 30 --out $run/release-eval --no-progress
python - "$run/release-eval/scores.json" checkpoints/generator.json "$here/comparison.json" <<'PY'
import json, sys
mine, card = (json.load(open(p)) for p in sys.argv[1:3])
rows = {c: {"paper_fid_ratio": round(mine["matched"][c]["fid_ratio"], 3), "paper_verdict": mine["matched"][c]["verdict"],
            "first_cv0_fid_ratio": round(card["matched"][c]["fid_ratio"], 3),
            "first_cv0_verdict": card["matched"][c]["verdict"]} for c in card["class_names"]}
json.dump({"paper": sys.argv[1], "first_cv0": sys.argv[2], "classes": rows}, open(sys.argv[3], "w"), indent=2)
print(json.dumps(rows, indent=2))
PY
