"""Means over folds x seeds and paired gains over the ratio-0 arm with confidence intervals; each
arm against its negative control; and whether a run failed to learn.

Each arm's cells are paired with the ratio-0 cell of the same fold and seed (same real training
images, same initial weights), so fold-to-fold differences cancel. Two intervals are given:
- the two-way interval (`gain_two_way`, `augment.intervals`), over training runs and test images,
  from the per-image predictions: the one verdicts and significance marks use;
- the runs-only interval (`gain`), Student's t on the paired differences, which treats the test
  images as fixed: kept beside it, labelled as such, as earlier reports gave it.
With one pair there is no interval (NaN) and nothing is significant. Cells without per-image
predictions and labels (hand-made ones) get the runs-only interval alone, and the verdict says so.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from classifier.crossval import mean_std
from classifier.health import collapse_reason, near_chance

from .intervals import two_way
from .multiple import holm

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


def scores(cell: dict, split: str = "test") -> dict[str, float]:
    """The numbers compared between arms: accuracy, macro F1 and per-class precision/recall/F1 of
    the cell's test report, or of another it stores (`valid_cv`: cross-validated scoring)."""
    test = cell[split]
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
    with its runs-only and two-way intervals, and the failed runs (which stay in the means)."""
    by_arm = _by_arm(cells)
    base = by_arm[reference]
    out = {}
    for arm, runs in by_arm.items():
        keys = sorted(runs)
        names = list(scores(runs[keys[0]]))
        pairs = [k for k in keys if k in base]
        out[arm] = {
            "n_runs": len(keys),
            "scores": {s: mean_std([scores(runs[k])[s] for k in keys]) for s in names},
            "gain": {s: paired_interval([scores(runs[k])[s] - scores(base[k])[s] for k in pairs], confidence)
                     for s in names},
            "gain_two_way": pair_two_way(runs, base, pairs, confidence) if arm != reference else None,
            "gain_by_generator": by_generator(runs, base, pairs, confidence) if arm != reference else None,
            "cross_validated": cross_validated(runs, base, pairs, confidence) if arm != reference else None,
            "failures": [{"fold": c["fold"], "seed": c["seed"], "reason": c["failure"]}
                         for c in cells if c["arm"] == arm and c["failure"]],
        }
    return out


def _by_arm(cells: list[dict]) -> dict[str, dict[tuple[int, int], dict]]:
    by_arm: dict[str, dict[tuple[int, int], dict]] = {}
    for cell in cells:
        by_arm.setdefault(cell["arm"], {})[(cell["fold"], cell["seed"])] = cell
    return by_arm


def per_image(cell: dict, split: str = "test") -> bool:
    """Whether a cell stores what the two-way interval needs: each image's prediction and label."""
    return "predicted" in cell[split] and "labels" in cell[split]


def pair_two_way(runs: dict, base: dict, pairs: list, confidence: float = 0.95, split: str = "test") -> dict | None:
    """The two-way interval of runs - base over `pairs` ((fold, seed) keys) on the cells' `split`
    report, or None when a cell lacks per-image predictions and labels, or there are fewer than 2 pairs."""
    if len(pairs) < 2 or not all(per_image(runs[k], split) and per_image(base[k], split) for k in pairs):
        return None
    return two_way([runs[k][split] for k in pairs], [base[k][split] for k in pairs],
                   runs[pairs[0]][split]["class_names"], confidence)


def cross_validated(runs: dict, base: dict, pairs: list, confidence: float = 0.95) -> dict | None:
    """The gain on the folds' validation images (cross-validated scoring: epochs chosen on an inner
    split, so these images chose nothing), both intervals; None when the cells were not scored so."""
    if not pairs or not all("valid_cv" in runs[k] and "valid_cv" in base[k] for k in pairs):
        return None
    names = list(scores(runs[pairs[0]], "valid_cv"))
    return {"gain": {s: paired_interval([scores(runs[k], "valid_cv")[s] - scores(base[k], "valid_cv")[s] for k in pairs],
                                        confidence) for s in names},
            "gain_two_way": pair_two_way(runs, base, pairs, confidence, split="valid_cv")}


def by_generator(runs: dict, base: dict, pairs: list, confidence: float = 0.95) -> dict | None:
    """With several generator replicas per fold: the accuracy gain over the pairs of each replica
    (two-way where the cells allow it), so a gain one generator carries alone shows; else None."""
    replica = {k: (runs[k].get("generator") or {}).get("replica") for k in pairs}
    if len({r for r in replica.values() if r is not None}) < 2:
        return None
    out = {}
    for r in sorted({r for r in replica.values() if r is not None}):
        chosen = [k for k in pairs if replica[k] == r]
        two_way_gain = pair_two_way(runs, base, chosen, confidence)
        out[str(r)] = headline({"accuracy": paired_interval(
            [scores(runs[k])["accuracy"] - scores(base[k])["accuracy"] for k in chosen], confidence)}, two_way_gain)
    return out


def declared(cells: list[dict], plan: dict) -> list[dict]:
    """Each comparison a plan declares (`Plan.describe()`): arm - against, paired by fold and seed,
    for the primary and secondary scores, two-way where the cells allow it, with the primary
    score's p adjusted by Holm within the comparison's family."""
    by_arm = _by_arm(cells)
    keys = [plan["primary"], *plan["secondary"]]
    out = []
    for c in plan["comparisons"]:
        runs, against = by_arm.get(c["arm"], {}), by_arm.get(c["against"], {})
        pairs = sorted(set(runs) & set(against))
        runs_only = {k: paired_interval([scores(runs[p])[k] - scores(against[p])[k] for p in pairs])
                     for k in keys if pairs and k in scores(runs[pairs[0]])}
        two_way_gain = pair_two_way(runs, against, pairs) if pairs else None
        out.append({**c, "pairs": len(pairs), "scores": {k: headline(runs_only, two_way_gain, k) for k in runs_only},
                    "runs_only": runs_only})
    for family in {c["family"] for c in out}:
        members = [c for c in out if c["family"] == family and "p" in c["scores"].get(plan["primary"], {})]
        adjusted = holm({c["name"]: c["scores"][plan["primary"]]["p"] for c in members})
        for c in members:
            c["holm_p"] = adjusted[c["name"]]
    return out


def reported_gain(arm_summary: dict, key: str) -> dict:
    """An arm's gain in `key` as reports and gates read it: two-way where the cells allow it."""
    return headline(arm_summary["gain"], arm_summary.get("gain_two_way"), key)


def headline(gain: dict, two_way_gain: dict | None, key: str = "accuracy") -> dict:
    """The interval a verdict uses: the two-way one where the cells allow it, else runs only."""
    return two_way_gain[key] if two_way_gain and key in two_way_gain else gain[key]


def against_controls(cells: list[dict], summary: dict) -> dict:
    """Each arm with a negative-control arm beside it (`<arm>+<control>`): the paired difference
    arm - control per score, over all pairs and over the pairs where neither run failed, and the
    verdict the study's question needs (regularisation or class information)."""
    by_arm = _by_arm(cells)
    out = {}
    # the negative controls: the same images without their class information (an augmented-real
    # arm is a comparison arm, declared in a plan, not a negative control)
    for control in (a for a in by_arm if a.endswith("+shuffled-labels") and a.split("+", 1)[0] in by_arm):
        arm = control.split("+", 1)[0]
        runs, controls = by_arm[arm], by_arm[control]
        pairs = sorted(set(runs) & set(controls))
        if not pairs:
            continue
        healthy = [k for k in pairs if not runs[k]["failure"] and not controls[k]["failure"]]
        differences = {label: {s: _difference(runs, controls, keys, s) for s in scores(runs[pairs[0]])} if keys else {}
                       for label, keys in (("difference", pairs), ("difference_without_failed", healthy))}
        two_ways = {f"{label}_two_way": pair_two_way(runs, controls, keys)
                    for label, keys in (("difference", pairs), ("difference_without_failed", healthy))}
        # judged on the pairs where both runs learned, unless failures took half of them: then the
        # failures are the finding (e.g. a control that never learns) and every pair counts
        on_healthy = len(healthy) >= max(2, len(pairs) / 2)
        label = "difference_without_failed" if on_healthy else "difference"
        judged = headline(differences[label], two_ways[f"{label}_two_way"])
        gain = headline(summary[arm]["gain"], summary[arm]["gain_two_way"])
        failed = {name: sum(bool(r[k]["failure"]) for k in pairs) for name, r in ((arm, runs), (control, controls))}
        basis = (f"judged on the {len(healthy)} of {len(pairs)} pairs where both runs learned" if on_healthy else
                 f"judged on all {len(pairs)} pairs: {', '.join(f'{n} failed {k} times' for n, k in failed.items())}")
        method = "runs and test images" if summary[arm]["gain_two_way"] and two_ways[f"{label}_two_way"] else \
            "runs only: the cells store no per-image predictions"
        out[arm] = {"control": control, **differences, **two_ways,
                    "verdict": f"{_verdict(gain, judged)} ({basis}; intervals over {method})"}
    return out


def _difference(runs: dict, controls: dict, keys: list, name: str) -> dict:
    return paired_interval([scores(runs[k])[name] - scores(controls[k])[name] for k in keys])


def _verdict(gain: dict, over_control: dict) -> str:
    """One sentence from the arm's accuracy gain over real-only and its difference to its control."""
    labels_matter = over_control["significant"] and over_control["mean"] > 0
    if gain["significant"] and gain["mean"] > 0:
        return ("a gain from the generated images' class information (the arm beats its control)" if labels_matter
                else "a gain its control matches (no significant difference): regularisation, not realism")
    if labels_matter:
        return ("no gain over real-only; the generated classes carry some information (the arm beats its "
                "control), not enough to help")
    if over_control["significant"]:
        return "no gain over real-only, and the control does better than the generated classes"
    return "no gain over real-only, and the generated classes do no better than shuffled labels"


def failure(valid_accuracy: float, test_report: dict) -> str | None:
    """Why a run did not learn, or None: validation accuracy near chance, or nearly all test
    predictions in one class. Failed runs stay in every mean; the report counts them."""
    chance = near_chance(valid_accuracy, len(test_report["class_names"]))
    if chance:
        return f"validation {chance}"
    reason = collapse_reason(test_report, "test predictions")
    return reason if reason and reason.startswith("collapsed") else None
