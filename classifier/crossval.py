"""Run a classifier over several cross-validation folds and summarise the test metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import numpy as np

from wgan.atomic import write_text
from wgan.data import record_splits
from wgan.distributed import is_main_process

from .health import collapse_reason
from .training import ClassifierRun, finished_metrics, run_classifier


def learned(metrics: dict) -> str | None:
    """Why a classifier-train run did not learn (its validation report, else its test report), or None."""
    for split in ("valid", "test"):
        if isinstance(metrics.get(split), dict) and "confusion_matrix" in metrics[split]:
            reason = collapse_reason(metrics[split])
            return f"{reason} on its {'validation' if split == 'valid' else 'test'} images" if reason else None
    return None


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def summarize(reports: list[dict]) -> dict:
    """Mean +- std over folds of accuracy, macro F1, Brier and each class's precision/recall/F1."""
    names = reports[0]["class_names"]
    return {
        "n_folds": len(reports),
        **{key: mean_std([r[key] for r in reports]) for key in ("accuracy", "macro_f1", "brier")},
        "per_class": {
            name: {key: mean_std([r["per_class"][name][key] for r in reports]) for key in ("precision", "recall", "f1")}
            for name in names
        },
    }


@dataclass
class FoldRuns:
    """What run_folds did: the summary it wrote, each fold's metrics, and the folds it reused."""

    summary: dict
    metrics: dict[int, dict]
    reused: list[int] = field(default_factory=list)


def run_folds(run: ClassifierRun, folds: list[int], progress: bool = True, overwrite: bool = False) -> FoldRuns:
    """Train and test on each fold in run.out/fold<k>/ (one layout whatever the number of folds;
    reusing a fold finished under the same settings and data, so an interrupted sweep resumes;
    refusing one of other settings unless `overwrite`); writes summary.json in run.out."""
    done = FoldRuns(summary={}, metrics={})
    collapsed = {}
    for fold in folds:
        fold_run = replace(run, data=replace(run.data, fold=fold), out=run.out / f"fold{fold}")
        metrics = finished_metrics(fold_run, overwrite)
        if metrics is None:
            metrics = run_classifier(fold_run, progress)
        else:
            done.reused.append(fold)
        done.metrics[fold] = metrics
        reason = learned(metrics)
        if reason:
            collapsed[str(fold)] = reason
    reports = [m["test"] for m in done.metrics.values()]
    done.summary = {"folds": folds, **summarize(reports),
                    "per_fold_accuracy": {str(k): m["test"]["accuracy"] for k, m in done.metrics.items()},
                    "collapsed": collapsed}
    if is_main_process():
        write_text(run.out / "summary.json", json.dumps(done.summary, indent=2))
        record_splits(run.data, run.out)
    return done
