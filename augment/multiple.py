"""Multiple comparisons: Holm's step-down adjustment of a family's p-values.

Holm (1979) controls the family-wise error rate like Bonferroni under any dependence between the
comparisons (arms of one study share their real-only runs and test images), and rejects at least
as much."""

from __future__ import annotations


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p per comparison: the k-th smallest p times (m - k + 1), made monotone, at most 1."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    m, running, out = len(ordered), 0.0, {}
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        out[name] = running
    return {name: out[name] for name in p_values}
