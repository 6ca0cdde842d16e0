"""Which cells of a study's grid are done, and which finished cells it may reuse.

A cell is reused only when its stored identity (every setting that changes its number, and the
generator's content hash rather than its path) equals the one this sweep would compute, whether
it lies in the study's own folder or in another study folder named by `reuse_from`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from classifier.identity import first_difference
from wgan import checkpoint as ckpt
from wgan.atomic import write_text

from .shared_cells import cell_files
from .sweep_config import Arm, SweepConfig


def cells(config: SweepConfig) -> list[tuple[Arm, int, int]]:
    """Every cell of the grid, arm by arm."""
    return [(arm, fold, seed) for arm in config.arms for fold in config.folds for seed in config.seeds]


def todo(config: SweepConfig) -> list[tuple[Arm, int, int]]:
    """The cells of the grid without a finished result, in the order they run: seed by seed, fold
    by fold, every arm of a fold together, so a sweep stopped part-way leaves whole paired folds."""
    pending = [c for c in cells(config) if not config.cell_path(*c).exists()]
    return sorted(pending, key=lambda cell: (cell[2], cell[1]))


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
        "pool": config.pool if adds else None,
        "fidelity_filter": config.fidelity_filter if adds else None,
        "control": arm.control,
        "schedule": config.schedule if adds else "mixed",
        "budget": config.budget if adds else "equal-steps",
        "base": config.base.identity(), "data": asdict(config.data), "real_fraction": config.real_fraction,
        # present only when not the conditioning labels (the one choice before the option existed),
        # so cells computed before it stay reusable
        **({"generated_labels": config.generated_labels}
           if adds and config.generated_labels != "conditioning" else {}),
        # likewise present only when pre-training is not as long as fine-tuning (the one choice before)
        **({"pretrain_epochs": config.pretraining_epochs}
           if adds and config.schedule == "pretrain-finetune" and config.pretraining_epochs != config.base.epochs else {}),
        # cross-validated scoring changes what trains and what picks the epoch, for every arm
        **({"inner_split": config.inner_split} if config.inner_split else {}),
        # the declared plan (name and hash), for a study run under one
        **({"plan": config.plan.record()} if config.plan else {}),
        # and per-arm pool draws (nested ones were the only kind before the option existed)
        **({"pool_draws": config.pool_draws} if adds and config.pool_draws != "nested" else {}),
        # and the reference classifier's epochs, only when they differ from the cell's own
        **({"reference_epochs": config.reference_epochs}
           if adds and config.uses_reference and config.reference_base.epochs != config.base.epochs else {}),
    }


def generator_hash(config: SweepConfig, fold: int, seed: int) -> str | None:
    """Content hash of the generator a cell of `fold` and `seed` uses (None when the sweep has none)."""
    return ckpt.file_hash(config.generator(fold, seed)) if config.generators else None


def check_reuse(config: SweepConfig, overwrite: bool = False) -> None:
    """Refuse (CellMismatch, naming the first differing setting) when a finished cell of this grid
    was computed under another identity; with `overwrite`, delete such cells so they are recomputed."""
    for arm, fold, seed in cells(config):
        path = config.cell_path(arm, fold, seed)
        if not path.exists():
            continue
        want = cell_identity(config, arm, fold, seed, generator_hash(config, fold, seed))
        have = _stored_identity(path)
        if have == want:
            continue
        if overwrite:
            path.unlink()
            continue
        raise CellMismatch(f"{config.out}: cell {arm.name} fold {fold} seed {seed} was computed with "
                           f"{first_difference(have, want)}; pass another --out, or --overwrite to recompute it")


def reusable(config: SweepConfig) -> dict[tuple[str, int, int], Path]:
    """Unfinished cells of this grid that a folder of `config.reuse_from` finished under the same
    identity (arm name, fold, seed -> that cell's file): two studies that share arms, e.g. the
    real-only cells, compute them once."""
    found: dict[tuple[str, int, int], Path] = {}
    if not config.reuse_from:
        return found
    elsewhere = [cell_files(folder) for folder in config.reuse_from]  # their own files and references
    for arm, fold, seed in todo(config):
        want = cell_identity(config, arm, fold, seed, generator_hash(config, fold, seed))
        name = config.cell_path(arm, fold, seed).relative_to(config.out / "cells").as_posix()
        source = next((files[name] for files in elsewhere
                       if name in files and _stored_identity(files[name]) == want), None)
        if source is not None:
            found[(arm.name, fold, seed)] = source
    return found


def adopt(config: SweepConfig) -> int:
    """Copy the `reusable` cells into this study's folder; returns how many."""
    found = reusable(config)
    for (name, fold, seed), source in found.items():
        write_text(config.out / "cells" / name / f"fold{fold}-seed{seed}.json", source.read_text())
    return len(found)


def _stored_identity(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()).get("identity")
    except (OSError, ValueError, AttributeError):
        return None  # unreadable: treated as computed under another identity
