"""What a sweep will cost, printed before it starts (and all `--dry-run` does), and what its
finished cells cost (`spent`, the report's compute line).

Seconds per cell of an arm come from that arm's finished cells in the output folder when there
are any (their recorded wall time), else from timing this machine once: a few training steps, a
validation pass and a few generated images with one thread, scaled to the arm's steps, epochs and
generated images. It is an estimate for planning, not a benchmark.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, replace

import torch

from classifier.engine import TrainSettings, tta_views
from classifier.models import build_model
from wgan.data import ImageSet, load_dataset
from wgan.device import autocast_factory, torch_threads

from . import mixing
from .reuse import cells, reusable, todo
from .sweep_config import Arm, SweepConfig

TIMED_STEPS = 3


@dataclass
class Cost:
    n_cells: int
    n_todo: int
    seconds_per_cell: float
    source: str  # where the per-cell figure comes from

    def describe(self, workers: int | None) -> str:
        """`workers` None: a cluster whose size this process does not know (an existing scheduler)."""
        total = self.n_todo * self.seconds_per_cell
        line = (f"{self.n_todo} of {self.n_cells} cells to run, about {self.seconds_per_cell:.0f} s each "
                f"({self.source}): {total / 60:.1f} CPU-minutes")
        if workers is None:
            return line + ", divided among the cluster's workers"
        return line + f", about {total / 60 / max(1, workers):.1f} minutes with {workers} worker{'s' if workers > 1 else ''}"


def spent(finished: list[dict]) -> list[dict]:
    """What the finished cells cost, summed over the workers that ran them, one row per device
    kind: cells, hosts (where recorded), wall hours, CPU hours (of the cells that recorded it),
    and for a GPU its hours (a cell holds its GPU for its whole wall time)."""
    rows: dict[str, dict] = {}
    for cell in finished:
        device = cell.get("device", "cpu")
        row = rows.setdefault(device, {"device": device, "cells": 0, "hosts": set(), "wall_hours": 0.0,
                                       "cpu_hours": 0.0, "cells_without_cpu_time": 0, "cells_resumed": 0})
        row["cells"] += 1
        row["cells_resumed"] += "resumed_after_epoch" in cell  # its time before the interruption is not in it
        if "host" in cell:
            row["hosts"].add(cell["host"])
        row["wall_hours"] += cell.get("seconds", 0.0) / 3600
        if "cpu_seconds" in cell:
            row["cpu_hours"] += cell["cpu_seconds"] / 3600
        else:  # recorded before cells kept their CPU time
            row["cells_without_cpu_time"] += 1
    return [row | {"hosts": len(row["hosts"])} | ({"gpu_hours": row["wall_hours"]} if row["device"] != "cpu" else {})
            for row in sorted(rows.values(), key=lambda r: r["device"])]


def describe_spent(rows: list[dict]) -> str:
    """One line: "cpu: 60 cells on 2 hosts, 10.20 CPU-hours (10.50 hours of cell wall time); ..."."""
    if not rows:
        return "no finished cells"
    parts = []
    for row in rows:
        hosts = f" on {row['hosts']} host{'s' if row['hosts'] != 1 else ''}" if row["hosts"] else ""
        gpu = f"{row['gpu_hours']:.2f} GPU-hours, " if "gpu_hours" in row else ""
        wall = f"{row['wall_hours']:.2f} hours of cell wall time"
        without = row["cells_without_cpu_time"]
        cpu = (f"{row['cpu_hours']:.2f} CPU-hours ({wall})" if not without else
               f"{wall} (CPU time not recorded)" if without == row["cells"] else
               f"{row['cpu_hours']:.2f} CPU-hours in the {row['cells'] - without} cells that recorded it ({wall})")
        resumed = row.get("cells_resumed", 0)
        resumed = (f"; {resumed} resumed after an interruption count only their last run" if resumed else "")
        parts.append(f"{row['device']}: {row['cells']} cells{hosts}, {gpu}{cpu}{resumed}")
    return "; ".join(parts)


def estimate(config: SweepConfig) -> Cost:
    """Seconds per cell still to run: for each of its arms, the median wall time of that arm's
    finished cells, else a timing on this machine (arms differ: a fresh pool costs generator time)."""
    adopted = reusable(config)
    pending = [(arm, fold, seed) for arm, fold, seed in todo(config) if (arm.name, fold, seed) not in adopted]
    if not pending:
        return Cost(len(cells(config)), 0, 0.0, "nothing left")
    finished: dict[str, list[float]] = {}
    for arm, fold, seed in cells(config):
        seconds = _seconds(config.cell_path(arm, fold, seed))
        if seconds is not None:
            finished.setdefault(arm.name, []).append(seconds)
    per_arm, timed, timings = {}, 0, None
    for arm, _, _ in pending:
        if arm.name not in per_arm:
            if finished.get(arm.name):
                per_arm[arm.name] = statistics.median(finished[arm.name])
            else:
                timings = timings or _Timings.measure(config)  # once, whatever the number of arms
                per_arm[arm.name], timed = timings.cell(config, arm), timed + 1
    total = sum(per_arm[arm.name] for arm, _, _ in pending)
    source = ("median of the finished cells of each arm" if not timed else
              "timed on this machine" if timed == len(per_arm) else
              f"finished cells, {timed} arm{'s' if timed > 1 else ''} timed on this machine")
    return Cost(len(cells(config)), len(pending), total / len(pending), source)


def _seconds(path) -> float | None:
    """A finished cell's wall time; None for a resumed cell, whose seconds are its last run's only."""
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return None if "resumed_after_epoch" in cell else cell.get("seconds")


@dataclass
class _Timings:
    """What the estimate scales, measured once on this machine at one thread."""

    real: ImageSet  # fold's training split (sizes), with the valid and test sizes below
    n_valid: int
    n_test: int
    step: float  # seconds per training step
    forward: float  # seconds per image of inference
    generate: float  # seconds per generated image (0 without a generator)
    views: int = 8  # views test-time augmentation averages over (classifier.engine.tta_views)

    @classmethod
    def measure(cls, config: SweepConfig) -> _Timings:
        data = replace(config.data, fold=config.folds[0])
        real, valid, test = (load_dataset(replace(data, subset=s)) for s in ("train", "valid", "test"))
        with torch_threads(1):
            step, forward = _time_model(config.base, real.resolution, len(real.class_names))
            generate = _time_generator(config) if config.generators else 0.0
        views = tta_views(build_model(config.base.model, real.resolution, len(real.class_names)))
        return cls(real, len(valid), len(test), step, forward, generate, views)

    def cell(self, config: SweepConfig, arm: Arm) -> float:
        """Seconds of one cell of `arm`."""
        n_real = round(len(self.real) * config.real_fraction)
        real_counts = {c: round(n * config.real_fraction) for c, n in self.real.class_counts().items()}
        counts = mixing.generated_counts(real_counts, arm.spec)
        base: TrainSettings = config.base
        per_epoch = n_real + (sum(counts) if config.budget == "equal-real-passes" else 0)
        steps = math.ceil(per_epoch / base.batch_size)
        own = dict(arm.overrides).get("epochs", base.epochs)
        epochs = own + (config.pretraining_epochs if config.schedule == "pretrain-finetune" and sum(counts) else 0)
        views = self.views if base.tta else 1
        generated = {"fixed": sum(counts), "fresh-per-epoch": sum(counts) * epochs,
                     "fresh-per-batch": steps * base.batch_size * epochs * sum(counts) / max(1, n_real + sum(counts))}
        seconds = (epochs * (steps * self.step + self.n_valid * views * self.forward)
                   + self.n_test * views * self.forward + generated[config.pool] * self.generate)
        if sum(counts) and config.uses_reference:
            # the real-only reference classifier, trained once per fold and seed for all adding arms
            adding = sum(not a.spec.is_zero for a in config.arms)
            reference = config.reference_base.epochs * (math.ceil(n_real / base.batch_size) * self.step + self.n_valid * views * self.forward)
            seconds += reference / adding
        return seconds


def _time_model(settings: TrainSettings, resolution: int, num_classes: int) -> tuple[float, float]:
    """(seconds per training step, seconds per image of inference), with the settings' bf16 autocast."""
    autocast = autocast_factory(torch.device("cpu"), settings.amp)
    model = build_model(settings.model, resolution, num_classes, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(settings.batch_size, 1, resolution, resolution)
    y = torch.randint(0, num_classes, (settings.batch_size,))
    model.train()

    def step():
        opt.zero_grad()
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    step_seconds = (time.perf_counter() - start) / TIMED_STEPS
    model.eval()
    with torch.no_grad(), autocast():
        start = time.perf_counter()
        model(torch.randn(256, 1, resolution, resolution))
        forward = (time.perf_counter() - start) / 256
    return step_seconds * 1.1, forward  # 1.1: data movement and augmentation around the step


def _time_generator(config: SweepConfig) -> float:
    """Seconds per generated image (the first fold's generator)."""
    from wgan.sampling import generate, load_generator

    gen = load_generator(config.generator(config.folds[0], config.seeds[0]))
    labels = torch.zeros(64, dtype=torch.int64)
    start = time.perf_counter()
    for _ in generate(gen.model, labels, torch.arange(64)):
        pass
    return (time.perf_counter() - start) / 64
