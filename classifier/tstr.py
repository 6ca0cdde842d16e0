"""Train on synthetic, test on real (TSTR): the baseline CNN trained only on generated images
and the same CNN trained on the real training split, both tested on the real test split."""

from __future__ import annotations

import torch

from wgan.data import ImageSet

from .engine import TrainSettings, evaluate, fit
from .models import build_model


def train_on_synthetic_test_on_real(generated: ImageSet, real_train: ImageSet, real_valid: ImageSet,
                                    real_test: ImageSet, settings: TrainSettings, device: torch.device,
                                    progress: bool | str = False) -> dict:
    """Per-class test F1 (and accuracy) of the CNN trained on generated vs on real images; the
    epoch is picked on the real validation split in both cases."""
    out = {}
    for name, train in (("synthetic", generated), ("real", real_train)):
        model = build_model(settings.model, train.resolution, len(real_train.class_names), seed=settings.seed)
        result = fit(model, train, real_valid, settings, device, progress=progress)
        report = evaluate(result.model, real_test, device)
        out[name] = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "best_epoch": result.best_epoch,
                     "f1": {c: report["per_class"][c]["f1"] for c in real_train.class_names}, "n_train": len(train)}
    return out
