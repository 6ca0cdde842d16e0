"""Means over folds x seeds and paired gains over the ratio-0 arm with confidence intervals.

Each arm's cells are paired with the ratio-0 cell of the same fold and seed (same real training
images, same initial weights), so fold-to-fold differences cancel. The interval is Student's t
on the paired differences; a gain is significant when its interval excludes 0. With one pair
there is no interval (NaN) and nothing is significant.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from classifier.crossval import mean_std

METRICS = ("precision", "recall", "f1")


def paired_interval(differences: list[float], confidence: float = 0.95) -> dict:
    """Mean of paired differences with a two-sided t interval."""
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": n, "significant": False}
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "significant": bool(low > 0 or high < 0)}


def scores(cell: dict) -> dict[str, float]:
    """The numbers compared between arms: accuracy, macro F1 and per-class precision/recall/F1."""
    test = cell["test"]
    out = {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
    for name in test["per_class"]:
        out.update({f"{name}/{m}": test["per_class"][name][m] for m in METRICS})
    return out


def class_names(summary: dict) -> list[str]:
    """The classes of a summary, in label order (from its per-class F1 keys)."""
    first = next(iter(summary.values()))["scores"]
    return [key[: -len("/f1")] for key in first if key.endswith("/f1") and key != "macro_f1"]


def summarize(cells: list[dict], reference: str, confidence: float = 0.95) -> dict:
    """Per arm: mean +- std of every score, the paired gain over `reference` (the ratio-0 arm)
    with its interval, and the failed runs (which stay in the means)."""
    by_arm: dict[str, dict[tuple[int, int], dict]] = {}
    for cell in cells:
        by_arm.setdefault(cell["arm"], {})[(cell["fold"], cell["seed"])] = scores(cell)
    base = by_arm[reference]
    out = {}
    for arm, runs in by_arm.items():
        keys = sorted(runs)
        names = list(runs[keys[0]])
        pairs = [k for k in keys if k in base]
        out[arm] = {
            "n_runs": len(keys),
            "scores": {s: mean_std([runs[k][s] for k in keys]) for s in names},
            "gain": {s: paired_interval([runs[k][s] - base[k][s] for k in pairs], confidence) for s in names},
            "failures": [{"fold": c["fold"], "seed": c["seed"], "reason": c["failure"]}
                         for c in cells if c["arm"] == arm and c["failure"]],
        }
    return out
