"""Classification metrics from labels and predicted probabilities, overall and per class."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def roc_auc_one_vs_rest(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count half); NaN when
    only one kind of example is present."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def classification_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro F1, Brier score and per-class precision/recall/F1/support/ROC AUC."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    predictions = probs.argmax(axis=1)
    cm = confusion_matrix(labels, predictions, k)
    per_class = {}
    for c, name in enumerate(class_names):
        tp = cm[c, c]
        precision, recall = _ratio(tp, cm[:, c].sum()), _ratio(tp, cm[c, :].sum())
        per_class[name] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": int(cm[c, :].sum()),
            "roc_auc": roc_auc_one_vs_rest(probs[:, c], labels == c),
        }
    onehot = np.eye(k)[labels]
    return {
        "n": int(labels.size),
        "accuracy": _ratio(np.trace(cm), cm.sum()),
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        # multi-class Brier score: mean over images of the squared distance to the one-hot truth
        "brier": float(np.mean(np.sum((probs - onehot) ** 2, axis=1))),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }


def plot_confusion_matrix(report: dict, path) -> None:
    """Write the confusion matrix (counts, rows = true class) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wgan.atomic import atomic_path

    cm = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > cm.max() / 2 else "black")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
