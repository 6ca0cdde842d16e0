"""One classifier run: load the splits, fit, evaluate on test, write the export and reports."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from wgan.atomic import write_text
from wgan.data import DataConfig, load_dataset, record_splits
from wgan.device import select_device
from wgan.distributed import from_environment, local_device, synchronise_batch_norm, wait_for_all
from wgan.stats import StatsLogger

from .engine import TrainSettings, evaluate, fit
from .export import save_classifier
from .fitstate import FitState
from .identity import first_difference
from .metrics import plot_confusion_matrix
from .models import build_model


@dataclass
class ClassifierRun:
    settings: TrainSettings = field(default_factory=TrainSettings)
    data: DataConfig = field(default_factory=lambda: DataConfig(split="cv", resolution=64))
    out: Path = Path("runs/classifier")
    device: str = "auto"


class RunMismatch(ValueError):
    """The output folder holds a classifier trained under other settings or data."""


def finished_metrics(run: ClassifierRun, overwrite: bool = False) -> dict | None:
    """The metrics of the finished run in `run.out` when it was trained with `run`'s settings and
    data (a rerun then reuses it); None when there is none, or with `overwrite`. A finished run of
    other settings raises RunMismatch naming the first difference."""
    path = run.out / "metrics.json"
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
        have = {"settings": metrics["settings"], "data": metrics["data"]}
    except (OSError, ValueError, KeyError, TypeError):
        metrics, have = None, None
    want = json.loads(json.dumps({"settings": run.settings.identity(), "data": asdict(run.data)}))
    if have == want:
        return metrics
    if overwrite:
        return None
    raise RunMismatch(f"{run.out} holds a classifier trained with {first_difference(have, want)}; "
                      "pass another --out, or --overwrite to retrain it")


def run_classifier(run: ClassifierRun, progress: bool = True) -> dict:
    """Train on `train`, pick the epoch on `valid`, report on `test`; returns the metrics dict."""
    device = select_device(run.device)
    shard = from_environment(device.type)  # torchrun: one slice of every batch per process
    device = local_device(device)
    train, valid, test = (load_dataset(replace(run.data, subset=s)) for s in ("train", "valid", "test"))
    model = build_model(run.settings.model, train.resolution, len(train.class_names), seed=run.settings.seed)
    if shard.world > 1:
        synchronise_batch_norm(model)
    run.out.mkdir(parents=True, exist_ok=True)
    # one process: an interrupted run of the same training goes on from its last saved epoch
    key = json.dumps([run.settings.identity(), asdict(run.data), train.fingerprint, valid.fingerprint], sort_keys=True)
    state = FitState(run.out / "training-state.pt", hashlib.sha256(key.encode()).hexdigest()) if shard.world == 1 else None
    logger = StatsLogger(run.out, resume_step=state.epoch() if state else None) if shard.is_main else None
    try:
        result = fit(model, train, valid, run.settings, device, log=logger.log if logger else None,
                     progress=progress and shard.is_main, shard=shard, state=state)
    finally:
        if logger:
            logger.close()
    test_report = evaluate(result.model, test, device, run.settings.amp, run.settings.tta)
    valid_report = evaluate(result.model, valid, device, run.settings.amp, run.settings.tta)
    metrics = {
        "model": run.settings.model,
        "best_epoch": result.best_epoch,
        "settings": run.settings.identity(),
        "data": asdict(run.data),
        "data_fingerprint": train.fingerprint,
        "counts": {"train": train.class_counts(), "valid": valid.class_counts(), "test": test.class_counts()},
        "valid": valid_report,
        "test": test_report,
        "history": result.history,
    }
    if not shard.is_main:
        wait_for_all(shard)
        return metrics  # every rank holds the same model; only the main one writes
    save_classifier(result.model, asdict(run.settings), asdict(run.data), train.resolution, list(train.class_names),
                    {"valid": valid_report, "test": test_report, "best_epoch": result.best_epoch}, run.out / "model.pt")
    write_text(run.out / "metrics.json", json.dumps(metrics, indent=2))
    record_splits(run.data, run.out)
    plot_confusion_matrix(test_report, run.out / "confusion_matrix.png")
    if state:
        state.discard()  # the exported model and metrics are the result now
    wait_for_all(shard)
    return metrics
