"""The grid of an augmentation study: arms (ratios and cheap baselines) x folds x seeds.

Every cell trains one classifier from scratch on the (mixed) training split of its fold, picks
the epoch on that fold's real validation split and tests on the real test split. All arms get
the same optimisation budget, `epochs` x the batches of one pass over the real training split,
so a gain cannot come from more optimiser steps on a bigger set. Each cell's result is written
atomically to its own JSON file with the full identity of what produced it (every setting that
changes its number, and the generator's content hash rather than its path); a rerun reuses a
cell only when the whole identity matches, and refuses to mix cells of another sweep.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from classifier.engine import TrainSettings, evaluate, fit
from classifier.export import save_classifier
from classifier.models import build_model
from wgan import checkpoint as ckpt
from wgan.atomic import write_text
from wgan.data import CLASS_NAMES, DataConfig, ImageSet, load_dataset
from wgan.run import select_device
from wgan.sampling import load_generator
from wgan.stats import StatsLogger

from . import mixing, pool

BASELINES = {  # name -> the one training option it adds to the base settings
    "class-weighted": {"class_weighted": True},
    "oversample": {"oversample": True},
    "dihedral": {"dihedral": True},
}
SCHEDULES = ("mixed", "pretrain-finetune")
# equal-steps: every arm gets the batches of `epochs` passes over the real split (a mixed set's
# real images are then seen less often); equal-real-passes: the real images are seen as often as
# in the real-only arm, so the steps grow with the ratio.
BUDGETS = ("equal-steps", "equal-real-passes")


@dataclass(frozen=True)
class Arm:
    name: str
    spec: mixing.MixSpec = mixing.MixSpec()
    overrides: tuple[tuple[str, bool], ...] = ()  # training options changed from the base


@dataclass
class SweepConfig:
    generators: dict[int, Path] | None  # fold -> generator export; None only when no arm adds generated images
    arms: list[Arm]
    folds: list[int]
    seeds: list[int]
    base: TrainSettings  # epochs = budget in passes over the real training split
    data: DataConfig = field(default_factory=lambda: DataConfig(split="cv", resolution=64))
    schedule: str = "mixed"
    fresh: bool = False  # new generated images every epoch instead of one fixed pool
    real_fraction: float = 1.0
    budget: str = "equal-steps"  # one of BUDGETS
    out: Path = Path("runs/augment")
    save_models: bool = False  # also write each cell's classifier export beside its JSON

    def model_path(self, arm: Arm, fold: int, seed: int) -> Path:
        return self.cell_path(arm, fold, seed).with_suffix(".pt")

    def cell_path(self, arm: Arm, fold: int, seed: int) -> Path:
        return self.out / "cells" / arm.name / f"fold{fold}-seed{seed}.json"


def build_arms(specs: list[mixing.MixSpec], base: TrainSettings, baselines: bool) -> list[Arm]:
    """One arm per ratio, plus each baseline the base settings do not already include."""
    arms = [Arm(spec.label, spec) for spec in specs]
    if baselines:
        arms += [Arm(f"real+{name}", mixing.MixSpec(), tuple(change.items()))
                 for name, change in BASELINES.items() if any(getattr(base, k) != v for k, v in change.items())]
    return arms


class CellMismatch(ValueError):
    """A finished cell in the output folder was computed under other settings."""


def cell_identity(config: SweepConfig, arm: Arm, fold: int, seed: int, generator_hash: str | None) -> dict:
    """Everything that changes a cell's numbers. The mixing mode and generator only count for an
    arm that adds generated images (the real-only cells of a balanced and a realistic sweep are
    the same computation)."""
    adds = not arm.spec.is_zero
    return {
        "arm": arm.name, "fold": fold, "seed": seed,
        "mixing": asdict(arm.spec) if adds else None, "overrides": dict(arm.overrides),
        "generator_sha256": generator_hash if adds else None,
        "fresh": config.fresh if adds else None,
        "schedule": config.schedule if adds else "mixed",
        "budget": config.budget if adds else "equal-steps",
        "base": asdict(config.base), "data": asdict(config.data), "real_fraction": config.real_fraction,
    }


def generator_hash(config: SweepConfig, fold: int) -> str | None:
    """Content hash of fold `fold`'s generator (None when the sweep has none)."""
    return ckpt.file_hash(config.generators[fold]) if config.generators else None


def check_reuse(config: SweepConfig, overwrite: bool = False) -> None:
    """Refuse (CellMismatch, naming the first differing setting) when a finished cell of this grid
    was computed under another identity; with `overwrite`, delete such cells so they are recomputed."""
    hashes = {fold: generator_hash(config, fold) for fold in config.folds}
    for arm, fold, seed in cells(config):
        path = config.cell_path(arm, fold, seed)
        if not path.exists():
            continue
        want = cell_identity(config, arm, fold, seed, hashes[fold])
        have = _stored_identity(path)
        if have == want:
            continue
        if overwrite:
            path.unlink()
            continue
        raise CellMismatch(f"{config.out}: cell {arm.name} fold {fold} seed {seed} was computed with "
                           f"{_first_difference(have, want)}; pass another --out, or --overwrite to recompute it")


def _stored_identity(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()).get("identity")
    except (OSError, ValueError, AttributeError):
        return None  # unreadable: treated as computed under another identity


def _first_difference(have: dict | None, want: dict, prefix: str = "") -> str:
    if have is None:
        return "no recorded identity (an older or damaged result)"
    for key in want:
        if isinstance(want[key], dict) and isinstance(have.get(key), dict):
            inner = _first_difference(have[key], want[key], f"{prefix}{key}.")
            if inner:
                return inner
        elif have.get(key, "<missing>") != want[key]:
            return f"{prefix}{key} = {have.get(key, '<missing>')!r}, this run has {want[key]!r}"
    return ""


def run_cell(config: SweepConfig, arm: Arm, fold: int, seed: int, device: str = "cpu") -> dict:
    """Train and test one classifier; writes and returns the cell's result."""
    dev = select_device(device)
    data = replace(config.data, fold=fold)
    real, valid, test = (load_dataset(replace(data, subset=s)) for s in ("train", "valid", "test"))
    real = mixing.real_fraction(real, config.real_fraction, seed)
    counts = mixing.generated_counts(list(real.class_counts().values()), arm.spec)
    train_for = _training_sets(config, real, counts, seed, fold)
    per_epoch = len(real) + (sum(counts) if config.budget == "equal-real-passes" else 0)
    settings = replace(config.base, seed=seed, steps_per_epoch=math.ceil(per_epoch / config.base.batch_size),
                       **dict(arm.overrides))
    trained_on = train_for(1).fingerprint  # real + generated (pool hash); --fresh pools change per epoch
    model = build_model(settings.model, real.resolution, len(CLASS_NAMES), seed=seed)
    logger = StatsLogger(config.out / "tensorboard" / arm.name / f"fold{fold}-seed{seed}", resume_step=0)
    pretrain = config.schedule == "pretrain-finetune" and sum(counts) > 0
    try:
        if pretrain:  # generated images only, then the real split alone; logged as epochs 1..2E
            model = fit(model, lambda epoch: _generated_only(train_for(epoch), len(real)), valid, settings, dev,
                        log=lambda e, row: logger.log(e, {f"pretrain/{k}": v for k, v in row.items()}),
                        progress=False).model
            train_for = lambda epoch: real  # noqa: E731
        offset = settings.epochs if pretrain else 0
        result = fit(model, train_for, valid, settings, dev, log=lambda e, row: logger.log(offset + e, row),
                     progress=False)
    finally:
        logger.close()
    test_report = evaluate(result.model, test, dev, settings.amp, settings.tta)
    best = result.history[result.best_epoch - 1]
    cell = {
        "arm": arm.name, "fold": fold, "seed": seed, "ratio": asdict(arm.spec), "overrides": dict(arm.overrides),
        "schedule": config.schedule, "real_counts": real.class_counts(), "generated_counts": dict(zip(CLASS_NAMES, counts)),
        "steps_per_epoch": settings.steps_per_epoch,
        "best_epoch": result.best_epoch, "valid_accuracy": best["valid/accuracy"], "test": test_report,
        "failure": failure(best["valid/accuracy"], test_report),
        "data_fingerprints": {"train": trained_on, "valid": valid.fingerprint, "test": test.fingerprint},
        "identity": cell_identity(config, arm, fold, seed, generator_hash(config, fold)),
    }
    if config.save_models:
        save_classifier(result.model, asdict(settings), asdict(data), real.resolution, list(CLASS_NAMES),
                        {"test": test_report, "best_epoch": result.best_epoch}, config.model_path(arm, fold, seed))
    write_text(config.cell_path(arm, fold, seed), json.dumps(cell, indent=2))  # last: marks the cell done
    return cell


def _training_sets(config: SweepConfig, real: ImageSet, counts: list[int], seed: int, fold: int):
    """epoch -> training set: the real split plus the generated images of that epoch."""
    if not sum(counts):
        return lambda epoch: real
    gen = load_generator(config.generators[fold])
    if config.fresh:
        return lambda epoch: mixing.mix(real, pool.draw(gen, counts, seed, epoch * pool.FRESH_STRIDE, cached=False))
    mixed = mixing.mix(real, pool.draw(gen, counts, seed))
    return lambda epoch: mixed


def _generated_only(mixed: ImageSet, n_real: int) -> ImageSet:
    """The generated part of a mixed set (mix puts the real images first)."""
    keep = torch.arange(len(mixed)) >= n_real
    return mixed.subset(keep.numpy(), "generated-only")


def failure(valid_accuracy: float, test_report: dict) -> str | None:
    """Why a run did not learn, or None: validation accuracy near chance, or nearly all test
    predictions in one class. Failed runs stay in every mean; the report counts them."""
    chance = 1 / len(CLASS_NAMES)
    if valid_accuracy < chance + 0.1:
        return f"validation accuracy {valid_accuracy:.3f} near chance ({chance:.2f})"
    predicted = torch.tensor(test_report["confusion_matrix"]).sum(0).float()
    if predicted.max() > 0.9 * predicted.sum():
        return f"collapsed: {predicted.max() / predicted.sum():.0%} of test predictions are {CLASS_NAMES[int(predicted.argmax())]}"
    return None


def cells(config: SweepConfig) -> list[tuple[Arm, int, int]]:
    return [(arm, fold, seed) for arm in config.arms for fold in config.folds for seed in config.seeds]


def _worker(args) -> dict:
    config, arm, fold, seed, device = args
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread per cell: results do not depend on how many run at once
    try:
        return run_cell(config, arm, fold, seed, device)
    finally:
        torch.set_num_threads(threads)


def run_sweep(config: SweepConfig, workers: int = 1, device: str = "auto", progress: bool = True) -> list[dict]:
    """Run every unfinished cell (in `workers` processes; CUDA devices are shared round-robin)
    and return all cell results in grid order. Finished cells are reused only under the same identity."""
    check_reuse(config)
    todo = [c for c in cells(config) if not config.cell_path(*c).exists()]
    n_gpu = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    jobs = [(config, *c, f"cuda:{i % n_gpu}" if n_gpu else device) for i, c in enumerate(todo)]
    bar = tqdm(total=len(cells(config)), initial=len(cells(config)) - len(todo), unit="cell", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _worker(job)
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as procs:
            for _ in procs.imap_unordered(_worker, jobs):
                bar.update()
    bar.close()
    return [json.loads(config.cell_path(*c).read_text()) for c in cells(config)]
