"""Gains with an interval that treats both the training runs and the test images as random.

Every run of every arm is scored on the same test images, so an image one arm happens to get
right counts in every pair: an interval over runs alone (Student's t on the paired differences)
treats the test set as fixed and is too narrow. The two-way ("pigeonhole") bootstrap of Owen
(2007, Ann. Appl. Stat. 1:1) resamples runs and images independently, each draw recomputing every
score from the per-image predictions the cells store; it is slightly conservative (the residual
variance is counted more than once), never optimistic.

Runs whose test sets are the same images (the same labels in the same order, as FIRST's shared
cross-validation test set) are crossed with them: one image draw serves all of them. Runs scored
on different test sets (e.g. a survey whose folds have their own test images) draw their images
within their own set.
"""

from __future__ import annotations

import numpy as np

DRAWS = 2000  # bootstrap draws: the smallest p it can give is 1/DRAWS
SEED = 20070301  # fixed, so a report re-rendered from the same cells gives the same numbers


def score_names(class_names: list[str]) -> list[str]:
    """The scores the two-way interval covers: accuracy, macro F1 and each class's F1."""
    return ["accuracy", "macro_f1", *(f"{c}/f1" for c in class_names)]


def two_way(arm: list[dict], base: list[dict], class_names: list[str], confidence: float = 0.95,
            draws: int = DRAWS, seed: int = SEED) -> dict[str, dict]:
    """Per score: the mean over pairs of (arm - base) on the whole test set, with a two-way
    bootstrap interval over runs and test images, its two-sided p and whether it excludes 0.

    `arm[i]` and `base[i]` are the test reports (`predicted`, `labels`) of the i-th pair (same
    fold and seed, so the same test images)."""
    if not arm:
        raise ValueError("no pairs to compare")
    rng = np.random.default_rng(seed)
    n_runs = len(arm)
    run_weights = rng.multinomial(n_runs, np.full(n_runs, 1 / n_runs), size=draws).astype(np.float64)
    image_weights = _image_weights(base, rng, draws)
    observed: dict[str, list[float]] = {name: [] for name in score_names(class_names)}
    resampled: dict[str, list[np.ndarray]] = {name: [] for name in observed}
    for a, b, weights in zip(arm, base, image_weights):
        labels = np.asarray(b["labels"], dtype=np.int64)
        same_images = a.get("images", b.get("images")) == b.get("images", a.get("images"))
        if not same_images or not np.array_equal(labels, np.asarray(a["labels"])):
            raise ValueError("a pair's two runs were scored on different test images")
        for name, (d_obs, d_draws) in _differences(a, b, labels, weights, class_names).items():
            observed[name].append(d_obs)
            resampled[name].append(d_draws)
    out = {}
    for name in observed:
        per_run = np.stack(resampled[name], axis=1)  # draws x runs
        gains = (per_run * run_weights).sum(1) / n_runs
        low, high, p = percentile_summary(gains, confidence)
        out[name] = {"mean": float(np.mean(observed[name])), "low": low, "high": high, "n": n_runs, "p": p,
                     "significant": bool(low > 0 or high < 0), "method": "two-way bootstrap (runs x images)"}
    return out


def percentile_summary(gains: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The percentile interval of bootstrap gains (quantiles alpha/2 and 1 - alpha/2) and the
    two-sided p: twice the smaller share of draws on either side of 0 (a draw at 0 counts on
    both sides, so no difference at all gives p = 1), never below 1/draws, the smallest share
    the draws can resolve."""
    alpha = 1 - confidence
    low, high = np.quantile(gains, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((gains <= 0).mean(), (gains >= 0).mean()))
    return float(low), float(high), max(float(p), 1 / gains.size)


def _image_weights(reports: list[dict], rng: np.random.Generator, draws: int) -> list[np.ndarray]:
    """One draws x images weight matrix per run; runs on the same images share it. Which images a
    report scored is its `images` fingerprint; reports without one are matched by their labels."""
    shared: dict[tuple, np.ndarray] = {}
    out = []
    for report in reports:
        labels = np.asarray(report["labels"], dtype=np.int64)
        key = (report.get("images"), labels.tobytes())
        if key not in shared:
            n = labels.size
            shared[key] = rng.multinomial(n, np.full(n, 1 / n), size=draws).astype(np.float64)
        out.append(shared[key])
    return out


def _differences(a: dict, b: dict, labels: np.ndarray, weights: np.ndarray,
                 class_names: list[str]) -> dict[str, tuple[float, np.ndarray]]:
    """Per score: (arm - base on the whole test set, arm - base under each image draw)."""
    both = np.vstack([np.ones((1, labels.size)), weights])  # row 0: every image once
    a_scores = scores(np.asarray(a["predicted"]), labels, class_names, both)
    b_scores = scores(np.asarray(b["predicted"]), labels, class_names, both)
    return {name: (float(a_scores[name][0] - b_scores[name][0]), a_scores[name][1:] - b_scores[name][1:])
            for name in a_scores}


def scores(predicted: np.ndarray, labels: np.ndarray, class_names: list[str], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro F1 and per-class F1 under each row of image weights (images x counts)."""
    out = {"accuracy": weights @ (predicted == labels) / weights.sum(1)}
    f1s = []
    for c in range(len(class_names)):
        true_positive = weights @ ((predicted == c) & (labels == c))
        denominator = weights @ (predicted == c) + weights @ (labels == c)  # 2TP + FP + FN
        # weights are counts, so a denominator is 0 (TP 0 too: F1 0) or at least 1
        f1s.append(2 * true_positive / np.maximum(denominator, 1))
    out["macro_f1"] = np.mean(f1s, axis=0)
    return out | {f"{name}/f1": f for name, f in zip(class_names, f1s)}
