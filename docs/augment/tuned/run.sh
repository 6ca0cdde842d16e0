#!/bin/bash
# The augmentation study on the tuned baseline: each fold's generator mixed into the
# training split of the 300-epoch CNN recipe (class-weighted, rotations/flips plus arbitrary-angle
# rotation, test-time averaging), 5 folds x 3 seeds, one thread per cell.
# Resumable: finished cells are committed under docs/augment/tuned/<study>/ and copied back into
# runs/ before each study, so a new machine continues where the last one stopped. The real-only
# reference classifiers of the filter and teacher studies stay under runs/ (retrained when a cell
# still needs them; the teacher study's are in the history, commit c144afd).
# Usage: bash docs/augment/tuned/run.sh [WORKERS] [STUDY ...] [-- AUGMENT-EVAL OPTIONS]   (from the
# repository root, in the project's venv; default: every study below, in this order). Options after
# `--` go to every augment-eval, e.g. where the cells run: `-- --scheduler tcp://host:8786` or
# `-- --cluster slurm --job-memory 4GB` (docs/guide/cluster.md).
set -euo pipefail
workers=${1:-2}
shift || true
here=docs/augment/tuned
# --pool-draws nested: every study here ran before per-arm draws existed (its cells' identities say so)
base="--epochs 300 --class-weighted --rotate --tta --seeds 0,1,2 --workers $workers --no-progress --pool-draws nested"
# Studies 1-8 used the per-fold small-resize generators released first (registry ids
# generator-3f73ca9bb7cc, -66a373a5a1d3, -573ea30bab21, -eb03b4e1f612, -c71d0c9b0133); they are
# kept as the best exports of their training runs, so those studies name them and still find
# their committed cells. Later studies use each fold's current release (first-cv<k>).
resize="--checkpoint checkpoints/training/resize-cv{fold}/generator-best.pt"

study() {  # NAME ARGS...: restore committed cells, run, keep cells and report
    local name=$1 status=0; shift
    mkdir -p runs/tuned-$name
    [ -d $here/$name/cells ] && cp -rn $here/$name/cells runs/tuned-$name/
    # cells shared with the studies it reused from are references here (paths relative to this
    # folder); under runs/ the run adopts them again from those studies (--reuse-from)
    rm -f runs/tuned-$name/cells/references.json
    # the study's own options come after the base, so they override it (e.g. --epochs)
    augment-eval $base "$@" "${engine[@]}" --out runs/tuned-$name || status=$?  # failed cells: kept, retried next time
    mkdir -p $here/$name
    [ -d runs/tuned-$name/cells ] && cp -r runs/tuned-$name/cells $here/$name/
    for f in results.json report.md gain.png errors.json; do
        [ -f runs/tuned-$name/$f ] && cp runs/tuned-$name/$f $here/$name/
    done
    # copies of the cells it reused (from the folders its results.json names) become references
    [ -f $here/$name/results.json ] && augment-tools share-cells $here/$name
    return $status
}

run_one() {
    case $1 in
    # 1. balanced mixing at every ratio, with the cheap baseline (oversampling) in the same run
    balanced) study balanced $resize --ratio 0.5 --ratio 1 --ratio 2 --ratio 3 --ratio 5 ;;
    # 2. the negative control (shuffled labels) at two ratios; shared cells come from study 1's
    # committed folder (as in every later study)
    control) study control $resize --ratio 1 --ratio 3 --control shuffled-labels --no-baselines --reuse-from $here/balanced ;;
    # 3. generated images labelled by the fold's real-only classifier (soft labels), and 4. the
    # class-fidelity filter with that same classifier (taken from study 3)
    teacher) study teacher $resize --ratio 1 --ratio 3 --generated-labels teacher --no-baselines --reuse-from $here/balanced ;;
    filter) study filter $resize --ratio 1 --fidelity-filter 0.5 --no-baselines --reuse-from $here/balanced \
                --reuse-from $here/teacher ;;
    # 5. realistic mixing, and 6. pre-train on generated then fine-tune on real
    realistic) study realistic $resize --mode realistic --ratio 1 --ratio 3 --no-baselines --reuse-from $here/balanced ;;
    pretrain) study pretrain $resize --schedule pretrain-finetune --ratio 1 --ratio 3 --no-baselines --reuse-from $here/balanced ;;
    # 6b. its control: pre-training on the same generated images with shuffled labels (r=3 added
    # after r=1, once study 6 at r=3 had finished)
    pretrain-control) study pretrain-control $resize --schedule pretrain-finetune --ratio 1 --ratio 3 --control shuffled-labels \
                --no-baselines --reuse-from $here/balanced --reuse-from $here/pretrain ;;
    # 7. the baseline alone with twice the epochs (the 300-epoch CNN still underfits the rotated images)
    e600) study e600 --ratio 0 --epochs 600 --no-baselines ;;
    # 8. pre-training (300 epochs on the generated images, as in study 6) then the 600-epoch fine-tuning
    # of the baseline of study 7, beside its shuffled-label control, folds paired arm and control
    e600-pretrain) study e600-pretrain $resize --epochs 600 --schedule pretrain-finetune --pretrain-epochs 300 --ratio 1 \
                --control shuffled-labels --no-baselines --reuse-from $here/e600 ;;
    # 9. balanced mixing at r=1 (study 1's arm) and 10. study 8's pre-training arm, each with the
    # small-asinh generators (each fold's current release), paired by fold and seed with the same
    # arm's cells of the earlier generators
    asinh-balanced) study asinh-balanced --ratio 1 --no-baselines --reuse-from $here/balanced ;;
    asinh-e600-pretrain) study asinh-e600-pretrain --epochs 600 --schedule pretrain-finetune --pretrain-epochs 300 \
                --ratio 1 --no-baselines --reuse-from $here/e600 ;;
    # 11. teacher labels, 12. the fidelity filter and 13. the shuffled-label control, each with the
    # small-asinh generators at r=1 (the reference classifiers of 11-12 are study 3's, reused)
    asinh-teacher) study asinh-teacher --ratio 1 --generated-labels teacher --no-baselines \
                --reuse-from $here/balanced --reuse-from $here/teacher ;;
    asinh-filter) study asinh-filter --ratio 1 --fidelity-filter 0.5 --no-baselines \
                --reuse-from $here/balanced --reuse-from $here/teacher ;;
    asinh-control) study asinh-control --ratio 1 --control shuffled-labels --no-baselines --reuse-from $here/balanced \
                --reuse-from $here/asinh-balanced ;;
    # 14. the other ratios of the issue (0.5, 2, 3, 5; r=3 first, the published claim's ratio) and
    # 15. realistic mixing, each with the small-asinh generators
    # (in two pieces: r=3 and r=0.5 first, then r=2 and r=5 join them in the same folder and report)
    asinh-ratios) study asinh-ratios --ratio 3 --ratio 0.5 --no-baselines --reuse-from $here/balanced &&
                  study asinh-ratios --ratio 3 --ratio 0.5 --ratio 2 --ratio 5 --no-baselines --reuse-from $here/balanced ;;
    # 16. the fidelity filter of study 13 at a lower and at the published ratio (its reference
    # classifiers are study 3's, reused)
    asinh-filter-ratios) study asinh-filter-ratios --ratio 0.5 --ratio 3 --fidelity-filter 0.5 --no-baselines \
                --reuse-from $here/balanced --reuse-from $here/teacher ;;
    # 17. the filter of study 16 at r=0.5 on the 600-epoch base, judged by study 3's 300-epoch
    # reference classifiers: do the filtered images add to 300 more real epochs?
    asinh-e600-filter) study asinh-e600-filter --epochs 600 --ratio 0.5 --fidelity-filter 0.5 --reference-epochs 300 \
                --no-baselines --reuse-from $here/e600 --reuse-from $here/teacher ;;
    # 18. the same at r=1 (new images, the same reference classifiers and real-only cells): does
    # study 17's gain hold at the other ratio that gained on the 300-epoch base?
    asinh-e600-filter-r1) study asinh-e600-filter-r1 --epochs 600 --ratio 1 --fidelity-filter 0.5 --reference-epochs 300 \
                --no-baselines --reuse-from $here/e600 --reuse-from $here/teacher ;;
    # 23. study 18's negative control: the same filtered images (the same accepted draws) with
    # their labels shuffled, beside study 18's arm and real-only cells: is the filter's gain on
    # the 600-epoch base class information, or extra images and regularisation?
    asinh-e600-filter-control) study asinh-e600-filter-control --epochs 600 --ratio 1 --fidelity-filter 0.5 \
                --reference-epochs 300 --control shuffled-labels --no-baselines --reuse-from $here/e600 \
                --reuse-from $here/teacher --reuse-from $here/asinh-e600-filter-r1 ;;
    # 24. study 18's arm at the published ratio (r=3): on the 300-epoch base the filtered images
    # gained at r=0.5 and r=1 but not at r=3 (study 16); does the 600-epoch base change that?
    asinh-e600-filter-r3) study asinh-e600-filter-r3 --epochs 600 --ratio 3 --fidelity-filter 0.5 --reference-epochs 300 \
                --no-baselines --reuse-from $here/e600 --reuse-from $here/teacher ;;
    asinh-realistic) study asinh-realistic --mode realistic --ratio 1 --ratio 3 --no-baselines --reuse-from $here/balanced ;;
    # 19. study 16's filtered r=0.5 arm with realistic mixing (the generated images copy the real
    # class mix instead of going to the rarest classes): does the filter's gain need the balancing?
    asinh-filter-realistic) study asinh-filter-realistic --mode realistic --ratio 0.5 --fidelity-filter 0.5 --no-baselines \
                --reuse-from $here/balanced --reuse-from $here/teacher ;;
    # 20. a strict filter: threshold 0.25, so a generated image is kept only when the reference
    # classifier reads it as its own class (study 13 at 0.5 kept the ones it was unsure of too);
    # r=1 on the 300-epoch base, paired with study 13 by fold and seed
    asinh-strict-filter) study asinh-strict-filter --ratio 1 --fidelity-filter 0.25 --no-baselines \
                --reuse-from $here/balanced --reuse-from $here/teacher ;;
    # 21. the ViT arm: the convolutional-stem ViT (the patch-stem one stays at chance from scratch),
    # its own recipe (60 epochs, lr 5e-4, 5 warm-up epochs, weight decay 0.05, bf16 autocast: a
    # ViT cell costs 43-67 minutes on one core, a CNN cell about 4), real only and balanced r=1
    # unfiltered (the published ViT's arm), one seed first; its cells share nothing with the CNN studies
    # (seed 0 ran on 2 CPU cores, seed 1's folds 0-1 on an H200 GPU: `run.sh 4 vit` there, 4-5 minutes
    # a cell); BatchNorm's running statistics, as before --batchnorm-stats existed
    vit) study vit --model vit-conv --epochs 60 --lr 5e-4 --warmup-epochs 5 --weight-decay 0.05 --amp --seeds 0,1,2 \
                --batchnorm-stats running --ratio 1 --no-baselines ;;
    # 22. the ResNet-18 arm: the CNN's tuned recipe unchanged (300 epochs, lr 1e-3), bf16 autocast,
    # real only and balanced r=1 unfiltered; 47 CPU-hours of training steps per seed on 2 cores
    # (bench/results/classifier_step-cpu.json), so it runs on a GPU when one is lent (there:
    # `bash docs/augment/tuned/run.sh 2 resnet`; on an H200 a real-only cell takes about 3 minutes
    # alone, and more cells at once are hardly faster in total). BatchNorm statistics recomputed
    # after every epoch (the default): with the running ones its validation accuracy sat at 0.14
    # (one class) in most epochs (docs/augment/tuned/bn-probe)
    resnet) study resnet --model resnet --amp --batchnorm-stats recalibrated --seeds 0 --ratio 1 --no-baselines ;;
    *) echo "unknown study '$1'" >&2; return 2 ;;
    esac
}

studies=() engine=()
while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; engine=("$@"); break; fi
    studies+=("$1"); shift
done
[ ${#studies[@]} -gt 0 ] || studies=(balanced control teacher filter realistic pretrain pretrain-control e600 e600-pretrain asinh-balanced asinh-e600-pretrain
         asinh-teacher asinh-filter asinh-control asinh-ratios asinh-realistic
         asinh-filter-ratios asinh-e600-filter asinh-e600-filter-r1 asinh-filter-realistic asinh-strict-filter asinh-e600-filter-control asinh-e600-filter-r3 vit resnet)
for name in "${studies[@]}"; do run_one "$name"; done
