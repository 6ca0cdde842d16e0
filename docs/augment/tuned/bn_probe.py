"""Is the jumpy validation accuracy of the BatchNorm models (vit-conv, ResNet-18) an artefact of
BatchNorm's running statistics?

Trains one classifier with a study's recipe on cv fold F and, after every epoch, evaluates the
validation split twice with the same weights: as `fit` does (the running statistics gathered
during training) and after `recalibrate_batchnorm` recomputed them over the training images. A
gap between the two is the statistics alone. The learning-rate schedule is the full run's (60
epochs for vit-conv, 300 for resnet); the probe stops after `--epochs`.

    python docs/augment/tuned/bn_probe.py --fold 0 --epochs 15 --out docs/augment/tuned/bn-probe/vit-conv-fold0.json
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import click
import torch

from classifier.engine import (
    TrainSettings,
    class_weights,
    evaluate,
    make_optimizer,
    recalibrate_batchnorm,
    train_one_epoch,
)
from classifier.models import build_model
from wgan.atomic import write_text
from wgan.data import DataConfig, load_dataset
from wgan.device import select_device

# study 21's recipe (docs/augment/tuned/run.sh, `vit`) and its data
VIT_CONV = TrainSettings(model="vit-conv", epochs=60, lr=5e-4, weight_decay=0.05, warmup_epochs=5, class_weighted=True,
                         rotate=True, amp=True)
DATA = DataConfig(source="first", split="cv", crop=128, resolution=64, pixel_scale_arcsec=1.8)


@click.command()
@click.option("--fold", type=int, default=0)
@click.option("--seed", type=int, default=0)
@click.option("--model", default="vit-conv", help="vit-conv, or resnet with the CNN's recipe (lr 1e-3, 300 epochs).")
@click.option("--epochs", type=int, default=15, help="Epochs to run.")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def main(fold: int, seed: int, model: str, epochs: int, out: Path) -> None:
    settings = replace(VIT_CONV, seed=seed) if model == "vit-conv" else TrainSettings(
        model=model, epochs=300, class_weighted=True, rotate=True, amp=True, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    device = select_device("auto")
    data = replace(DATA, fold=fold)
    train, valid = (load_dataset(replace(data, subset=s)) for s in ("train", "valid"))
    net = build_model(settings.model, train.resolution, len(train.class_names), seed=seed).to(device)
    steps = math.ceil(len(train) / settings.batch_size)
    optimizer, scheduler = make_optimizer(net, settings, steps)
    weights = class_weights(train.labels, len(train.class_names)).to(device)
    rng = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        stats = train_one_epoch(net, train, optimizer, scheduler, settings, rng, device, weights)
        running = evaluate(net, valid, device, settings.amp)
        recalibrated = copy.deepcopy(net)  # training goes on with the running statistics untouched
        recalibrate_batchnorm(recalibrated, train.images, device, amp=settings.amp)
        precise = evaluate(recalibrated, valid, device, settings.amp)
        rows.append({"epoch": epoch, "lr": stats["lr"], "train_accuracy": stats["accuracy"],
                     "valid_running": running["accuracy"], "valid_recalibrated": precise["accuracy"],
                     "valid_loss_running": running["loss"], "valid_loss_recalibrated": precise["loss"],
                     "seconds": time.perf_counter() - started})
        print(json.dumps(rows[-1]), flush=True)
        write_text(out, json.dumps({"settings": asdict(settings), "data": asdict(data), "epochs": rows}, indent=2))


if __name__ == "__main__":
    main()
