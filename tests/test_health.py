"""A classifier that did not learn is named, and refused where its judgement would count."""

from dataclasses import replace

import numpy as np
import pytest

from augment import analysis
from augment.filtering import reference_classifier
from classifier.engine import TrainSettings
from classifier.health import ClassifierCollapsed, collapse_reason, refuse_collapsed
from tests.helpers import synthetic_set

NAMES = ["FRI", "FRII", "Compact", "Bent"]


def _report(confusion) -> dict:
    counts = np.asarray(confusion)
    return {"class_names": NAMES, "confusion_matrix": counts.tolist(), "accuracy": float(np.trace(counts) / counts.sum())}


def test_predictions_piled_into_one_class_are_a_collapse():
    piled = _report([[0, 20, 0, 0], [0, 20, 0, 0], [1, 19, 0, 0], [0, 20, 0, 0]])
    assert collapse_reason(piled) == "collapsed: 99% of its predictions are FRII"
    # most images called FRI, each other class's few calls right: recall (per true class) says collapsed,
    # precision (per predicted class, the wrong axis) would not
    mostly_fri = _report([[100, 0, 0, 0], [90, 10, 0, 0], [90, 0, 10, 0], [90, 0, 0, 10]])
    assert collapse_reason(mostly_fri) == "collapsed: 92% of its predictions are FRI"


def test_one_large_true_class_predicted_well_is_not_a_collapse():
    """Most test images of one class, all predicted right: the predictions follow the truth, so a
    detector that summed over the true classes (the wrong axis) would fire here."""
    skewed = _report([[5, 0, 0, 0], [0, 190, 0, 0], [0, 0, 3, 0], [0, 0, 0, 2]])
    assert collapse_reason(skewed) is None
    healthy = _report([[70, 10, 10, 10], [10, 80, 5, 5], [5, 5, 85, 5], [20, 10, 0, 70]])
    assert collapse_reason(healthy) is None


def test_spread_predictions_at_chance_are_not_learning():
    chance = _report([[7, 6, 6, 6], [6, 7, 6, 6], [6, 6, 7, 6], [6, 6, 6, 7]])
    assert "near chance" in collapse_reason(chance)


def test_a_study_cell_names_the_collapse_with_its_test_predictions():
    piled = _report([[0, 25, 0, 0], [0, 25, 0, 0], [0, 25, 0, 0], [0, 25, 0, 0]])
    assert analysis.failure(0.8, piled) == "collapsed: 100% of test predictions are FRII"
    assert analysis.failure(0.3, piled).startswith("validation accuracy 0.300 near chance")
    assert analysis.failure(0.8, _report(np.eye(4, dtype=int) * 25)) is None


def test_refusal_is_one_line_naming_the_classifier_and_its_role():
    with pytest.raises(ClassifierCollapsed, match=r"^the extractor did not learn \(collapsed: .* on its validation "
                                                  r"images\); it cannot serve as a feature extractor"):
        refuse_collapsed(_report([[0, 5, 0, 0]] * 4) | {"split": "validation"}, "the extractor", "a feature extractor")
    refuse_collapsed(None, "an old export", "a feature extractor")  # nothing stored: nothing to judge


def test_the_fidelity_filter_refuses_a_reference_that_learned_one_class(tmp_path):
    """A reference classifier trained where every label is FRII calls every validation image FRII."""
    real = synthetic_set(32, 32, seed=0)
    real = replace(real, labels=real.labels * 0 + 1)
    valid = synthetic_set(16, 32, seed=1)
    settings = TrainSettings(model="cnn", epochs=1, batch_size=16, seed=0)
    with pytest.raises(ClassifierCollapsed, match="reference classifier of seed 0 .* did not learn"):
        reference_classifier(tmp_path, settings, 0, {"source": "synthetic"}, real, valid, "cpu")


def test_classifier_train_names_a_classifier_that_did_not_learn(tmp_path):
    """Three epochs on the synthetic blobs: every validation image is called one class (seeded,
    so the same every run); the summary says so beside the scores, and the metrics agree."""
    import json

    from click.testing import CliRunner

    from classifier.crossval import learned
    from commands.classifier import classifier_train_command
    from tests.helpers import synthetic_h5

    path = synthetic_h5(tmp_path / "data.h5")
    out = tmp_path / "clf"
    result = CliRunner().invoke(classifier_train_command, ["--data", str(path), "--crop", "32", "--resolution", "32",
                                                           "--epochs", "3", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    reason = learned(json.loads((out / "fold0" / "metrics.json").read_text()))
    assert reason and reason.startswith("collapsed: 100% of its predictions are Compact")
    assert f"COLLAPSED: this classifier did not learn ({reason})" in result.output
