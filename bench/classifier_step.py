"""Classifier training-step cost: every model at float32 and bf16 autocast, side by side.

Prints one JSON document (median over measured steps after warm-up) with the CPU flags, and
what one 5-fold run of the tuned protocol (300 epochs over a fold's 1405 training images) would
cost in training steps alone, so the price of a ResNet-18 or ViT baseline is known before it
starts. For the models with BatchNorm it also times `recalibrate_batchnorm` over a fold's training
images, the extra forward pass that `--batchnorm-stats recalibrated` (the default) adds to every
epoch, beside the epoch's training steps. On a CPU without native bf16 the bf16 column is
skipped unless --emulated-bf16 asks what emulation costs (`bf16_speedup` then falls below 1).
Run:  python bench/classifier_step.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_quality import cpu_flags  # noqa: E402

from classifier.engine import recalibrate_batchnorm  # noqa: E402
from classifier.models import BATCHNORM_MODELS, MODELS, build_model  # noqa: E402
from wgan.device import native_bf16  # noqa: E402

TRAIN_IMAGES, EPOCHS, FOLDS = 1405, 300, 5  # fold 0's training split; the tuned recipe


def step_seconds(name: str, resolution: int, batch: int, amp: bool, steps: int, warmup: int) -> float:
    model = build_model(name, resolution, 4, seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 1, resolution, resolution), torch.randint(0, 4, (batch,))
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def recalibration_seconds(name: str, resolution: int, amp: bool) -> float:
    """One `recalibrate_batchnorm` pass over TRAIN_IMAGES images, after a short warm-up pass."""
    model = build_model(name, resolution, 4, seed=0)
    images = torch.randint(0, 256, (TRAIN_IMAGES, resolution, resolution), dtype=torch.uint8)
    recalibrate_batchnorm(model, images[:64], torch.device("cpu"), amp=amp)
    start = time.perf_counter()
    recalibrate_batchnorm(model, images, torch.device("cpu"), amp=amp)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(sorted(MODELS)))
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--emulated-bf16", action="store_true",
                        help="time bf16 autocast even where it is only emulated (what --amp costs on this CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = native_bf16(torch.device("cpu"))
    steps_per_run = FOLDS * EPOCHS * math.ceil(TRAIN_IMAGES / args.batch)
    results = []
    for name in args.models.split(","):
        row = {"model": name}
        for variant, amp in (("fp32", False), ("bf16", True)):
            if amp and not bf16 and not args.emulated_bf16:
                row[variant] = {"skipped": "no native bf16 on this CPU (emulated bf16 is far slower than fp32; "
                                           "--emulated-bf16 times it)"}
                continue
            step = step_seconds(name, args.resolution, args.batch, amp, args.steps, args.warmup)
            row[variant] = {"step_s": round(step, 4), "img_per_s": round(args.batch / step, 1),
                            "five_fold_cpu_hours": round(step * steps_per_run / 3600 * args.threads, 2)}
            if name in BATCHNORM_MODELS:
                recal = recalibration_seconds(name, args.resolution, amp)
                epoch = step * math.ceil(TRAIN_IMAGES / args.batch)
                row[variant].update(recalibration_s=round(recal, 3), epoch_steps_s=round(epoch, 3),
                                    recalibration_share_of_epoch=round(recal / epoch, 3))
        if "step_s" in row.get("bf16", {}):
            row["bf16_speedup"] = round(row["fp32"]["step_s"] / row["bf16"]["step_s"], 2)
        results.append(row)
    print(json.dumps({
        "resolution": args.resolution, "batch": args.batch, "threads": args.threads, "torch": torch.__version__,
        "cpu_flags": cpu_flags(), "native_bf16": bf16,
        "classifier_train_default": "fp32 on the CPU (--amp turns bf16 autocast on), bf16 autocast on CUDA",
        "five_fold_run": f"{FOLDS} folds x {EPOCHS} epochs x {math.ceil(TRAIN_IMAGES / args.batch)} steps, "
                         "training steps only (validation passes add to it)",
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
