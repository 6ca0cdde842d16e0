"""Classifier training: `train_one_epoch` and `evaluate` return metric dicts; `fit` selects the
best epoch on the validation split (never on test)."""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wgan.data import GENERATED_SOURCE, ImageSet, to_unit_range
from wgan.data.symmetry import dihedral, random_dihedral, random_rotation
from wgan.device import autocast_factory, reproducible_kernels
from wgan.distributed import SINGLE, Shard, average_gradients, average_stats
from wgan.progress import progress_bar

from .fitstate import FitState, restore, snapshot
from .metrics import classification_report
from .models import BATCHNORM_MODELS, probabilities


@dataclass
class TrainSettings:
    """How a classifier is trained; every field enters the export's config."""

    model: str = "cnn"
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"  # adamw | sgd (momentum 0.9, nesterov)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1  # linear warm-up, then cosine decay to 0
    class_weighted: bool = False  # loss weighted by inverse class frequency
    oversample: bool = False  # draw training images with probability inverse to class frequency
    dihedral: bool = True  # random rotations/flips of the square
    rotate: bool = False  # plus arbitrary-angle rotation (as the published preprocessing)
    select_on: str = "accuracy"  # validation metric that picks the best epoch: accuracy | macro_f1 | loss
    patience: int | None = None  # stop after this many epochs without a better validation score
    seed: int = 0
    amp: bool = False  # bf16 autocast (CUDA, or a CPU with native bf16: faster for the ViT and the ResNet)
    tta: bool = False  # predict with the mean probability over the 8 rotations/flips (valid and test)
    steps_per_epoch: int | None = None  # fixed batches per epoch (same compute for sets of any size); None: one pass
    augment_generated: bool = True  # False: generated images enter as drawn (the published protocol)
    # BatchNorm statistics the model is evaluated (and exported) with: "recalibrated", recomputed
    # over the real training images after every epoch (see recalibrate_batchnorm); "running", the
    # averages gathered during training (every run before the option existed). No effect on a
    # model without BatchNorm (the CNN, the patch ViT).
    batchnorm_stats: str = "recalibrated"

    @classmethod
    def from_record(cls, recorded: dict) -> TrainSettings:
        """The settings a run recorded (asdict), a field added since taking the value every
        earlier run had rather than today's default."""
        return cls(**{**LATER_FIELDS, **recorded})

    def effective(self) -> dict:
        """Every setting that can change this run's numbers, at its value (what a report shows):
        without the fields that do nothing for this model."""
        inert = set() if self.model in BATCHNORM_MODELS else {"batchnorm_stats"}
        return {k: v for k, v in asdict(self).items() if k not in inert}

    def identity(self) -> dict:
        """The settings as they enter a run's identity (cache keys): the effective ones, less a
        field added later at the value every earlier run had, so results committed before it
        stay reusable."""
        return {k: v for k, v in self.effective().items() if k not in LATER_FIELDS or LATER_FIELDS[k] != v}


LATER_FIELDS = {"batchnorm_stats": "running"}  # field -> the value every earlier run had


def class_weights(labels: torch.Tensor, num_classes: int, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse class frequency, normalised so a balanced set gets weight 1 everywhere. With soft
    `targets` [N, classes], a class's frequency is its summed probability mass."""
    if targets is not None:
        counts = targets.sum(0).float().clamp(min=1)
    else:
        counts = torch.bincount(labels.cpu(), minlength=num_classes).float().clamp(min=1)
    return counts.sum() / (num_classes * counts)


def epoch_order(labels: torch.Tensor, settings: TrainSettings, rng: torch.Generator, num_classes: int) -> torch.Tensor:
    """Indices of one epoch: a permutation (several chained when `steps_per_epoch` asks for more
    than one pass), or a class-balanced draw with replacement."""
    n = labels.numel()
    wanted = settings.steps_per_epoch * settings.batch_size if settings.steps_per_epoch else n
    if settings.oversample:
        weights = class_weights(labels, num_classes)[labels.cpu()]
        return torch.multinomial(weights, wanted, replacement=True, generator=rng)
    passes = [torch.randperm(n, generator=rng) for _ in range(math.ceil(wanted / n))]
    return torch.cat(passes)[:wanted]


def make_optimizer(model: nn.Module, settings: TrainSettings, steps_per_epoch: int):
    if settings.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    elif settings.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9, nesterov=True,
                              weight_decay=settings.weight_decay)
    else:
        raise ValueError(f"unknown optimizer '{settings.optimizer}'")
    total, warmup = settings.epochs * steps_per_epoch, settings.warmup_epochs * steps_per_epoch

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


# labels of a batch's generated images -> new uint8 images for them (a generated image per draw)
FreshImages = Callable[[torch.Tensor], torch.Tensor]


def train_one_epoch(model: nn.Module, data: ImageSet, optimizer, scheduler, settings: TrainSettings,
                    rng: torch.Generator, device: torch.device, loss_weights: torch.Tensor | None = None,
                    shard: Shard = SINGLE, fresh: FreshImages | None = None, targets: torch.Tensor | None = None) -> dict:
    """One pass over the training images; returns {'loss', 'accuracy', 'lr'}.

    With `fresh`, the generated images of every batch are replaced by new ones of the same
    classes, so no generated image is ever shown twice. With `targets` ([N, classes] class
    probabilities, one row per training image), the loss is the cross-entropy against them
    instead of the labels (training accuracy still counts the labels). Under torchrun every rank draws the
    global batch (and its augmentation) and trains on its slice; gradients are averaged over
    the ranks, so the result matches one process.
    """
    model.train()
    order = epoch_order(data.labels, settings, rng, len(data.class_names))
    generated = torch.from_numpy(np.asarray(data.source == GENERATED_SOURCE))
    as_drawn = None if settings.augment_generated else generated
    total_loss, correct = 0.0, 0
    for start in range(0, len(order), settings.batch_size):
        index = order[start : start + settings.batch_size]
        images = data.images[index]
        if fresh is not None and generated[index].any():
            images = images.clone()
            images[generated[index]] = fresh(data.labels[index][generated[index]])
        x = to_unit_range(images.to(device)).unsqueeze(1)
        y = data.labels[index].to(device)
        x = _augment(x, settings, rng, None if as_drawn is None else as_drawn[index].to(device))
        # the loss's targets: class indices, or probability rows when soft targets are given
        t_all = y if targets is None else targets[index].to(device)
        x, y, t = shard.take(x), shard.take(y), shard.take(t_all)
        with autocast_factory(device, settings.amp)():
            logits = model(x)
        loss = _loss(logits.float(), t, t_all, loss_weights, shard)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(model, shard)
        optimizer.step()
        scheduler.step()
        # the ranks' losses average to the global batch's mean loss (see _loss), so each rank adds
        # its loss times the global batch's size; the correct predictions are counted on its slice
        total_loss += loss.item() * len(index)
        correct += (logits.argmax(1) == y).sum().item()
    totals = average_stats({"loss": total_loss, "correct": correct}, shard, device)  # means over the ranks
    return {"loss": totals["loss"] / len(order), "accuracy": totals["correct"] / len(order) * shard.world,
            "lr": scheduler.get_last_lr()[0]}


def _augment(x: torch.Tensor, settings: TrainSettings, rng: torch.Generator, keep: torch.Tensor | None) -> torch.Tensor:
    """Rotations/flips of a batch; images where `keep` is true stay as they are. The random draws
    are the same either way, so the real images get the same augmentation in both protocols."""
    original = x
    if settings.dihedral:
        x = random_dihedral(x, rng)
    if settings.rotate:
        x = random_rotation(x, rng)
    return x if keep is None else torch.where(keep[:, None, None, None], original, x)


def _loss(logits: torch.Tensor, t: torch.Tensor, t_all: torch.Tensor, weights: torch.Tensor | None,
          shard: Shard) -> torch.Tensor:
    """Cross-entropy against class indices or probability rows `t`, (weighted) mean over the
    global batch `t_all`: a rank's share is its sum over the global normaliser times the number of
    ranks, so the average over ranks is the global mean even when the last batch does not split
    evenly. A one-hot row gives the same loss as its class index."""
    if t.is_floating_point():  # soft targets: -sum_c w_c t_c log p_c over sum_c w_c t_c
        w = weights if weights is not None else torch.ones(t.shape[1], device=t.device)
        total = -(t * w * F.log_softmax(logits, 1)).sum()
        return total / (t_all * w).sum() * shard.world
    if shard.world == 1:
        return F.cross_entropy(logits, t, weight=weights)
    norm = weights[t_all].sum() if weights is not None else torch.tensor(float(len(t_all)))
    return F.cross_entropy(logits, t, weight=weights, reduction="sum") / norm * shard.world


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256,
            amp: bool = False, tta: bool = False) -> torch.Tensor:
    """Class probabilities [N, classes] for uint8 images [N, H, W]; with `tta`, the mean over the
    8 rotations/flips of each image (the morphology classes have no preferred orientation)."""
    model.eval()
    views = range(tta_views(model) if tta else 1)
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = to_unit_range(images[start : start + batch_size].to(device)).unsqueeze(1)
        with autocast_factory(device, amp)():
            out.append(sum(probabilities(model(dihedral(x, v))).float() for v in views).cpu() / len(views))
    return torch.cat(out)


def tta_views(model: nn.Module) -> int:
    """How many rotations/flips test-time augmentation averages over: one for a model whose
    scores those transforms cannot change (the D4-equivariant CNN's are invariant by construction,
    so the other 7 views would cost 7 forward passes to add float rounding), else all 8."""
    return 1 if getattr(model, "dihedral_invariant", False) else 8


def _batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256,
                          amp: bool = False) -> bool:
    """Recompute every BatchNorm layer's running statistics as the plain average over `images`
    (uint8 [N, H, W], as training sees them before augmentation) with the current weights
    ("precise BatchNorm"). The running averages gathered during training mix the statistics of
    many recent weights, which can be far from the current ones while the weights move fast.
    Returns False (and changes nothing) for a model without BatchNorm."""
    norms = _batchnorm_layers(model)
    if not norms:
        return False
    momentum = {norm: norm.momentum for norm in norms}
    model.eval()  # the rest of the model as in evaluation (dropout off)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
        norm.train()
    try:
        for start in range(0, images.shape[0], batch_size):
            x = to_unit_range(images[start : start + batch_size].to(device)).unsqueeze(1)
            with autocast_factory(device, amp)():
                model(x)
    finally:
        for norm in norms:
            norm.momentum = momentum[norm]
        model.eval()
    return True


def evaluate(model: nn.Module, data: ImageSet, device: torch.device, amp: bool = False, tta: bool = False) -> dict:
    """The classification report of `data` plus the mean cross-entropy ('loss') and the predicted
    class of every image ('predicted')."""
    probs = predict(model, data.images, device, amp=amp, tta=tta)
    report = classification_report(data.labels.numpy(), probs.numpy(), list(data.class_names))
    picked = probs[torch.arange(len(data)), data.labels].clamp(min=1e-12)
    report["loss"] = float(-picked.log().mean())
    report["predicted"] = probs.argmax(1).tolist()  # per image, for corner-case tracking
    report["labels"] = data.labels.tolist()  # with it: intervals over test images (augment.intervals)
    report["images"] = content_hash(data)  # which images: runs scored on the same ones are crossed with them
    return report


def content_hash(data: ImageSet) -> str:
    """A hash of the images and labels themselves (not of how they were loaded): two folds scored
    on the same shared test set name the same images."""
    digest = hashlib.sha256(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().astype("int64").tobytes())
    return digest.hexdigest()[:24]


def selection_score(report: dict, metric: str) -> float:
    """Higher is better."""
    return -report["loss"] if metric == "loss" else report[metric]


@dataclass
class FitResult:
    model: nn.Module  # weights of the best validation epoch
    best_epoch: int
    history: list[dict]  # one dict per epoch: train and valid metrics


def _calibration_images(data: ImageSet, fresh: FreshImages | None) -> torch.Tensor | None:
    """The images BatchNorm is recalibrated on: the real training images, the ones evaluation
    resembles (all of the set's when it holds none, e.g. pre-training on generated images; None
    when those are placeholders for a per-batch stream, whose statistics then stay running)."""
    real = torch.from_numpy(np.asarray(data.source != GENERATED_SOURCE))
    if real.any():
        return data.images[real]
    return None if fresh is not None else data.images


def fit(model: nn.Module, train: ImageSet | Callable[[int], ImageSet], valid: ImageSet, settings: TrainSettings,
        device: torch.device, log: Callable[[int, dict], None] | None = None, progress: bool = True,
        shard: Shard = SINGLE, fresh: FreshImages | None = None, targets: torch.Tensor | None = None,
        state: FitState | None = None) -> FitResult:
    """Train for `settings.epochs` (or until `patience` runs out) and keep the best validation epoch.

    `train` is a fixed set, or a function of the epoch (1, 2, ...) returning that epoch's set (for
    training sets that change, e.g. freshly generated images); class weights come from epoch 1's set.
    `fresh` replaces the generated images of every batch (see `train_one_epoch`); `targets`, soft
    labels of a fixed training set (one row per image), replace its labels in the loss. With
    `state`, the training is saved every `state.every` epochs and at its end, and goes on from a
    state saved there by an interrupted run of the same training (the caller discards it once
    the result is kept).
    """
    if state is not None and shard.world > 1:  # each rank's global random stream would need its own state
        raise ValueError("a resumable fit runs in one process; under torchrun, train without a state")
    if state is not None and fresh is not None and not hasattr(fresh, "state_dict"):
        raise ValueError("a resumable fit needs a per-batch image source with state_dict()/load_state_dict()")
    train_for = train if callable(train) else (lambda epoch: train)
    rng = torch.Generator().manual_seed(settings.seed)
    reproducible_kernels(device)  # a cell on a GPU repeats bit for bit, as on the CPU
    model.to(device)
    first = train_for(1)
    if targets is not None and (fresh is not None or targets.shape != (len(first), len(first.class_names))):
        raise ValueError("soft targets need a fixed training set with one row of class probabilities per image")
    steps = settings.steps_per_epoch or math.ceil(len(first) / settings.batch_size)
    optimizer, scheduler = make_optimizer(model, settings, steps)
    weights = class_weights(first.labels, len(first.class_names), targets).to(device) if settings.class_weighted else None
    recalibrate = settings.batchnorm_stats == "recalibrated" and bool(_batchnorm_layers(model))  # not for the CNN
    best, best_epoch, best_state, history, start = -np.inf, 0, None, [], 1
    saved = state.load() if state is not None else None
    if saved is not None:
        restore(saved, model, optimizer, scheduler, rng, device, fresh)
        best, best_epoch, best_state, history = saved["best"], saved["best_epoch"], saved["best_model"], saved["history"]
        start = settings.epochs + 1 if saved["finished"] else saved["epoch"] + 1
    bar = progress_bar(range(start, settings.epochs + 1), unit="epoch", desc="classifier", progress=progress, leave=False)
    for epoch in bar:
        data = first if epoch == 1 else train_for(epoch)
        if targets is not None and data is not first:
            raise ValueError("soft targets need a fixed training set; this one changes between epochs")
        train_stats = train_one_epoch(model, data, optimizer, scheduler, settings, rng, device, weights, shard, fresh,
                                      targets)
        if recalibrate:
            calibration = _calibration_images(data, fresh)
            if calibration is not None:
                recalibrate_batchnorm(model, calibration, device, amp=settings.amp)
        valid_report = evaluate(model, valid, device, settings.amp, settings.tta)
        row = {"epoch": epoch, **{f"train/{k}": v for k, v in train_stats.items()},
               "valid/loss": valid_report["loss"], "valid/accuracy": valid_report["accuracy"],
               "valid/macro_f1": valid_report["macro_f1"]}
        history.append(row)
        if log:
            log(epoch, row)
        score = selection_score(valid_report, settings.select_on)
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
        bar.set_postfix(valid_acc=f"{valid_report['accuracy']:.3f}", best=best_epoch)
        stop = bool(settings.patience and epoch - best_epoch >= settings.patience)
        finished = stop or epoch == settings.epochs
        if state is not None and (finished or epoch % state.every == 0):
            state.save({"epoch": epoch, "finished": finished, **snapshot(model, optimizer, scheduler, rng, device, fresh),
                        "best": float(best), "best_epoch": best_epoch, "best_model": best_state, "history": history})
        if stop:
            break
    model.load_state_dict(best_state)
    return FitResult(model=model, best_epoch=best_epoch, history=history)
