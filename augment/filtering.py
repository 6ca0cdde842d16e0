"""What a cell's real-only classifier does to its generated images: the class-fidelity filter
drops those it confidently puts in another class; the teacher labels replace each image's
conditioning class with the probabilities it gives.

That reference classifier is the real-only classifier of the cell's fold and seed (the base
settings, the real training split, epochs picked on the fold's validation split, as the
reference arm trains it), so it knows nothing the cell does not: no test image, and of the
validation split only what epoch selection uses anyway. It is trained once per fold, seed and
settings (the cells' own, or another number of epochs with `--reference-epochs`) and kept under
`<out>/filters/`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import torch

from classifier.engine import TrainSettings, evaluate, fit, predict
from classifier.export import load_classifier, save_classifier
from classifier.fitstate import FitState
from classifier.health import refuse_collapsed
from classifier.models import build_model
from wgan.data import ImageSet
from wgan.workdir import taking_turns

from .pool import Accept


def accept_by_fidelity(model: torch.nn.Module, threshold: float, device: torch.device, tta: bool) -> Accept:
    """Keep an image unless the classifier gives another class probability above `threshold`."""

    def accept(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probs = predict(model, images, device, tta=tta)
        best = probs.argmax(1)
        return (best == labels) | (probs.max(1).values <= threshold)

    return accept


def teacher_targets(model: torch.nn.Module, mixed: ImageSet, n_real: int, device: torch.device,
                    tta: bool) -> torch.Tensor:
    """Soft training targets of a mixed set (real images first): one-hot labels for the `n_real`
    real images, the classifier's class probabilities for the generated ones."""
    targets = torch.nn.functional.one_hot(mixed.labels, len(mixed.class_names)).float()
    targets[n_real:] = predict(model, mixed.images[n_real:], device, tta=tta)
    return targets


def reference_classifier(out: Path, base: TrainSettings, seed: int, data: dict, real: ImageSet, valid: ImageSet,
                         device: torch.device, reuse_from: tuple[Path, ...] = ()) -> torch.nn.Module:
    """The real-only classifier of a cell's fold and seed, trained with the base settings as the
    reference arm is; cached by identity under `out`, or taken from another study folder of
    `reuse_from` that trained the same one."""
    settings = replace(base, seed=seed, steps_per_epoch=math.ceil(len(real) / base.batch_size))
    identity = {"settings": settings.identity(), "data": data, "train": real.fingerprint, "valid": valid.fingerprint}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    path = out / "filters" / f"classifier-{key}.pt"
    with taking_turns(out / f".reference-{key}.lock"):  # two arms' cells of one fold and seed train it once
        model = next((load_classifier(found, device).model for found in
                      (folder / "filters" / path.name for folder in (out, *reuse_from)) if found.is_file()), None)
        if model is None:
            model = build_model(settings.model, real.resolution, len(real.class_names), seed=settings.seed)
            state = FitState(path.with_suffix(".partial.pt"), key)  # a stopped study goes on from there
            result = fit(model, real, valid, settings, device, progress=False, state=state)
            model = result.model
            save_classifier(model, asdict(settings), {**data, "identity": identity}, real.resolution,
                            list(real.class_names), {"best_epoch": result.best_epoch}, path)
            state.discard()
    # a reference that calls everything one class would filter or relabel the generated images at random
    report = evaluate(model, valid, device, settings.amp, settings.tta) | {"split": "validation"}
    refuse_collapsed(report, f"the reference classifier of seed {seed} ({path})", "the fidelity filter's or teacher's "
                     "reference", "give it more epochs (--reference-epochs; the tuned recipe's 300 learn)")
    return model
