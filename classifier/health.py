"""Whether a trained classifier learned anything: one that calls almost every image one class, or
scores near chance, must not judge generators (as a feature extractor or a fidelity filter) nor
enter a study's means without a word."""

from __future__ import annotations

import numpy as np

ONE_CLASS_SHARE = 0.9  # above this share of predictions in one class, a classifier has collapsed
NEAR_CHANCE = 0.1  # accuracy within this of chance (1 / classes) is near chance


class ClassifierCollapsed(ValueError):
    """A classifier that did not learn was given a job that needs one that did."""


def collapse_reason(report: dict, predictions: str = "its predictions") -> str | None:
    """Why the classification `report` (of classifier.metrics) says the classifier did not learn,
    or None: its balanced accuracy (mean recall over the classes present) is near chance, as when
    it calls nearly every image one class. Judged on recall, not on the share of predictions, so a
    good classifier on a set that is mostly one class is not called collapsed."""
    counts = np.asarray(report["confusion_matrix"], dtype=np.float64)  # [true, predicted]
    support = counts.sum(1)
    present = support > 0
    balanced = float(np.mean(np.diag(counts)[present] / support[present]))
    if balanced >= 1 / present.sum() + NEAR_CHANCE:
        return None
    predicted = counts.sum(0)
    if predicted.max() > ONE_CLASS_SHARE * predicted.sum():
        name = report["class_names"][int(predicted.argmax())]
        return f"collapsed: {predicted.max() / predicted.sum():.0%} of {predictions} are {name}"
    return f"balanced accuracy {balanced:.3f} near chance ({1 / present.sum():.2f})"


def near_chance(accuracy: float, n_classes: int) -> str | None:
    chance = 1 / n_classes
    if accuracy < chance + NEAR_CHANCE:
        return f"accuracy {accuracy:.3f} near chance ({chance:.2f})"
    return None


def refuse_collapsed(report: dict | None, what: str, role: str,
                     remedy: str = "train another (classifier-train) and pass it instead") -> None:
    """Raise ClassifierCollapsed (one line naming `what`, why and the remedy) when `report` says
    the classifier did not learn; None (no stored report) passes."""
    reason = collapse_reason(report) if report else None
    if reason:
        raise ClassifierCollapsed(f"{what} did not learn ({reason} on its {report.get('split', 'evaluation')} images); "
                                  f"it cannot serve as {role}: {remedy}")
