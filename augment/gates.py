"""Pass/fail of a new generator against the current best, from their report.json contents.

A report holds:
- `quality`: per class {"kid", "kid_std", "fid"} of the generator's samples;
- `gain`: per class the paired F1 gain over real-only {"mean", "low", "high", "n"} at the
  evaluated ratio, plus "accuracy";
- `corners`: corner-case id -> predicted correctly (classifier trained with the generator);
- `behaviour`: a list of {"name", "value", "passed"}.

Gates (each a dict with name, passed, detail):
- a class's F1 gain falls below the best's by more than the new interval's half-width (or by
  more than `tolerance` when there is no interval) -- this fails even when accuracy rises;
- more corner cases go from right under the best to wrong under the new one than from wrong to
  right, by more than chance (one-sided sign test, p < `corner_p`): a classifier retrained with
  another seed alone flips 4-19 of them each way, so a gate on any flip fails on noise;
- a class's KID rises by more than 3 combined standard deviations;
- a behavioural test the best passed now fails.
"""

from __future__ import annotations

import math


def _gain_gates(new: dict, best: dict, tolerance: float) -> list[dict]:
    out = []
    for name in new["quality"]:
        g_new, g_best = new["gain"][name], best["gain"][name]
        half = (g_new["high"] - g_new["low"]) / 2 if g_new.get("n", 0) > 1 and math.isfinite(g_new["high"]) else tolerance
        drop = g_best["mean"] - g_new["mean"]
        out.append({"name": f"F1 gain {name}", "passed": drop <= half,
                    "detail": f"{g_new['mean']:+.3f} vs best {g_best['mean']:+.3f} (allowed drop {half:.3f})"})
    return out


def _quality_gates(new: dict, best: dict) -> list[dict]:
    out = []
    for name in new["quality"]:
        q_new, q_best = new["quality"][name], best["quality"][name]
        limit = q_best["kid"] + 3 * math.hypot(q_new["kid_std"], q_best["kid_std"])
        out.append({"name": f"KID {name}", "passed": q_new["kid"] <= limit,
                    "detail": f"{q_new['kid']:.3f} vs best {q_best['kid']:.3f} (limit {limit:.3f})"})
    return out


def check_comparable(best: dict | None, class_names: list[str]) -> None:
    """Refuse to gate a generator against a best of other classes (another data set's registry)."""
    if best is not None and list(best["quality"]) != list(class_names):
        raise ValueError(f"the registry's best generator has classes {list(best['quality'])}, this one "
                         f"{list(class_names)}: keep a registry per data set (--registry)")


def _corner_gate(new: dict, best: dict, corner_p: float) -> dict:
    """Flips each way between the best's classifier and the new one on the same cases; every case
    that went wrong is named, pass or fail, so it can be looked at."""
    from scipy.stats import binomtest

    worse = sorted(c for c, ok in best["corners"].items() if ok and not new["corners"].get(c, False))
    better = sorted(c for c, ok in best["corners"].items() if not ok and new["corners"].get(c, False))
    p = float(binomtest(len(worse), len(worse) + len(better), alternative="greater").pvalue) if worse else 1.0
    return {"name": "corner cases", "passed": bool(p >= corner_p),
            "detail": f"{len(worse)} flipped from right to wrong, {len(better)} from wrong to right "
                      f"(sign test p {p:.3g}, fails below {corner_p:g})" + (f": {', '.join(worse)}" if worse else "")}


def evaluate(new: dict, best: dict | None, tolerance: float = 0.02, corner_p: float = 0.05) -> list[dict]:
    """Every gate; with no best yet, there is nothing to regress from and the list is empty."""
    if best is None:
        return []
    check_comparable(best, list(new["quality"]))
    gates = _gain_gates(new, best, tolerance) + _quality_gates(new, best) + [_corner_gate(new, best, corner_p)]
    passed_before = {b["name"] for b in best["behaviour"] if b["passed"]}
    for test in new["behaviour"]:
        if test["name"] in passed_before:
            gates.append({"name": f"behaviour: {test['name']}", "passed": test["passed"],
                          "detail": f"value {test['value']:.3f}"})
    return gates


def passed(gates: list[dict]) -> bool:
    return all(g["passed"] for g in gates)
