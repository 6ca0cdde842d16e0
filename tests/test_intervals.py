"""Gains with intervals over training runs and test images (augment.intervals), Holm's
adjustment, and the labels older cells get back from their test split."""

import numpy as np
import pytest

from augment import analysis, intervals
from augment.labels import attach_test_labels
from augment.multiple import holm
from classifier.metrics import classification_report
from tests.helpers import CLASSES, scored_report, study_cell

N = 400


def _pairs(swap_to_arm: int, swap_to_base: int, runs: int = 15, jitter: int = 1) -> tuple[list[dict], list[dict]]:
    """Real-only runs with about 80 % right, each its own images; the arm's run of the same fold
    and seed gets `swap_to_arm` fixed images right that real only gets wrong, `swap_to_base` fixed
    ones wrong that real only gets right, and `jitter` images of its own flipped either way."""
    rng = np.random.default_rng(1)
    fixed_gain, fixed_loss = np.arange(swap_to_arm), np.arange(100, 100 + swap_to_base)
    arm, base = [], []
    for _ in range(runs):
        right = rng.random(N) < 0.8
        right[fixed_gain], right[fixed_loss] = False, True
        better = right.copy()
        better[fixed_gain], better[fixed_loss] = True, False
        flip = rng.choice(np.arange(200, N), size=jitter, replace=False)
        better[flip] = ~better[flip]
        base.append(scored_report(right))
        arm.append(scored_report(better))
    return arm, base


def _runs_only(arm: list[dict], base: list[dict]) -> dict:
    return analysis.paired_interval([a["accuracy"] - b["accuracy"] for a, b in zip(arm, base)])


def test_a_few_images_right_in_every_run_is_no_gain_once_images_count():
    """Net +1 point from the same 6 images right and 2 wrong in every run: the runs agree, so the
    runs-only interval excludes 0; 8 images of 400 are no evidence, so the two-way one does not."""
    arm, base = _pairs(6, 2)
    runs_only, both = _runs_only(arm, base), intervals.two_way(arm, base, list(CLASSES))["accuracy"]
    assert both["mean"] == pytest.approx(runs_only["mean"])
    assert runs_only["significant"] and runs_only["low"] > 0
    assert not both["significant"] and both["low"] < 0 < both["high"] and both["p"] > 0.05


def test_forty_images_better_and_none_worse_is_a_gain_both_ways():
    arm, base = _pairs(40, 0)
    runs_only, both = _runs_only(arm, base), intervals.two_way(arm, base, list(CLASSES))["accuracy"]
    assert runs_only["significant"] and both["significant"] and both["low"] > 0.05 and both["p"] < 0.01


def test_run_to_run_variation_still_counts():
    """Images that help in some runs and hurt in others: the interval must not shrink to the image
    part alone (a bootstrap over images only would call this a gain)."""
    rng = np.random.default_rng(3)
    arm, base = [], []
    for run in range(10):
        right = rng.random(N) < 0.8
        better = right.copy()
        # even runs get 24 images right that real only gets wrong, odd runs lose 16 it gets right
        changed = rng.choice(np.flatnonzero(right != (run % 2 == 0)), size=24 if run % 2 == 0 else 16, replace=False)
        better[changed] = run % 2 == 0
        base.append(scored_report(right))
        arm.append(scored_report(better))
    both = intervals.two_way(arm, base, list(CLASSES))["accuracy"]
    assert not both["significant"]
    assert both["high"] - both["low"] > 0.02


def test_the_scores_match_the_classification_report_at_unit_weights():
    rng = np.random.default_rng(5)
    labels = np.arange(N) % 4
    predicted = np.where(rng.random(N) < 0.7, labels, rng.integers(0, 4, N))
    predicted[labels == 3] = np.where(rng.random(100) < 0.5, 3, 0)  # an uneven class
    report = classification_report(labels, np.eye(4)[predicted], list(CLASSES))
    got = intervals.scores(predicted, labels, list(CLASSES), np.ones((1, N)))
    assert got["accuracy"][0] == pytest.approx(report["accuracy"])
    assert got["macro_f1"][0] == pytest.approx(report["macro_f1"])
    for name in CLASSES:
        assert got[f"{name}/f1"][0] == pytest.approx(report["per_class"][name]["f1"])


def test_a_class_f1_gain_is_found_where_the_class_gains():
    """Bent images that real only calls FRI are right in the arm: Bent F1 gains, Compact does not."""
    rng = np.random.default_rng(7)
    labels = np.arange(N) % 4
    arm, base = [], []
    for _ in range(8):
        predicted = np.where(rng.random(N) < 0.85, labels, (labels + 1) % 4)
        better = predicted.copy()
        bent = np.flatnonzero(labels == 3)[:40]
        predicted[bent] = 0
        better[bent] = 3
        base.append(classification_report(labels, np.eye(4)[predicted], list(CLASSES)) | {"predicted": predicted.tolist(), "labels": labels.tolist()})
        arm.append(classification_report(labels, np.eye(4)[better], list(CLASSES)) | {"predicted": better.tolist(), "labels": labels.tolist()})
    gains = intervals.two_way(arm, base, list(CLASSES))
    assert gains["Bent/f1"]["significant"] and gains["Bent/f1"]["low"] > 0
    assert not gains["Compact/f1"]["significant"]
    assert gains["Bent/f1"]["mean"] == pytest.approx(np.mean([a["per_class"]["Bent"]["f1"] - b["per_class"]["Bent"]["f1"]
                                                             for a, b in zip(arm, base)]))


def test_runs_on_their_own_test_sets_draw_images_within_each():
    """Folds with their own test images (a survey's split file): each run's images are drawn on
    their own, and a pair scored on two different sets is refused."""
    arm, base = _pairs(40, 0, runs=4)
    for i, (a, b) in enumerate(zip(arm, base)):  # run i's test set: the same images in another order
        order = np.random.default_rng(i).permutation(N)
        for report in (a, b):
            report["labels"] = np.asarray(report["labels"])[order].tolist()
            report["predicted"] = np.asarray(report["predicted"])[order].tolist()
    assert intervals.two_way(arm, base, list(CLASSES))["accuracy"]["significant"]
    base[0] = base[1]
    with pytest.raises(ValueError, match="different test images"):
        intervals.two_way(arm, base, list(CLASSES))


def test_the_same_cells_give_the_same_interval():
    arm, base = _pairs(6, 2)
    assert intervals.two_way(arm, base, list(CLASSES)) == intervals.two_way(arm, base, list(CLASSES))


def test_the_summary_and_verdict_use_the_two_way_interval():
    """The arm of the first test through analysis.summarize: the runs-only gain is kept and
    significant, the two-way one is not, and the report marks no significant gain."""
    arm, base = _pairs(6, 2, runs=5)
    cells = [{"arm": "r=0", "fold": f, "seed": 0, "failure": None, "test": t} for f, t in enumerate(base)]
    cells += [{"arm": "r=1", "fold": f, "seed": 0, "failure": None, "test": t} for f, t in enumerate(arm)]
    summary = analysis.summarize(cells, "r=0")
    assert summary["r=1"]["gain"]["accuracy"]["significant"]
    assert not summary["r=1"]["gain_two_way"]["accuracy"]["significant"]
    assert not analysis.reported_gain(summary["r=1"], "accuracy")["significant"]
    assert summary["r=0"]["gain_two_way"] is None


def test_holm_against_a_hand_computed_example():
    # sorted .005 .01 .03 .04 -> x4 .02, x3 .03, x2 .06, x1 .04 -> monotone .06
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}) == pytest.approx(
        {"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})
    assert holm({"a": 0.6, "b": 0.5}) == {"a": 1.0, "b": 1.0}
    assert holm({"a": 0.7, "b": 0.6, "c": 0.01}) == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.03})  # 2 x 0.6 capped at 1
    assert holm({}) == {}


def test_old_cells_get_their_labels_from_the_test_split(monkeypatch):
    """A cell without labels: read from its identity's test split, and checked against the
    confusion matrix it stored, so a wrong split or order is refused."""
    cell = study_cell("r=0", 0, 0.8)
    labels = cell["test"].pop("labels")
    cell["identity"] = {"data": {"source": "first", "split": "cv", "subset": "train", "fold": 0}}
    asked = []

    class Loaded:
        def __init__(self, values):
            import torch

            self.labels = torch.tensor(values)
            self.images = torch.zeros(len(values), 2, 2, dtype=torch.uint8)

    def fake_load(config):
        asked.append(config)
        return Loaded(labels)

    monkeypatch.setattr("augment.labels.load_dataset", fake_load)
    [got] = attach_test_labels([cell])
    assert got["test"]["labels"] == labels and asked[0].subset == "test" and len(got["test"]["images"]) == 24
    monkeypatch.setattr("augment.labels.load_dataset", lambda config: Loaded(labels[1:] + labels[:1]))
    with pytest.raises(ValueError, match="do not give the confusion matrix"):
        attach_test_labels([cell])


def _study_folder(folder, cells):
    """An augment-eval --out folder holding `cells` and a results.json written before the two-way interval."""
    import json

    for cell in cells:
        path = folder / "cells" / cell["arm"] / f"fold{cell['fold']}-seed{cell['seed']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cell))
    listed = [{"arm": c["arm"], "fold": c["fold"], "seed": c["seed"], "best_epoch": 1, "valid_accuracy": 0.8,
               "failure": c["failure"], "test_accuracy": c["test"]["accuracy"]} for c in cells]
    config = {"base": {"model": "cnn", "epochs": 1}, "data": {}, "schedule": "mixed", "folds": [0, 1, 2], "seeds": [0],
              "real_fraction": 1, "pool": "fixed", "fidelity_filter": 0}
    (folder / "results.json").write_text(json.dumps({"command": "augment-eval", "config": config, "mode": "balanced",
                                                    "reference_arm": "r=0", "cells": listed, "summary": {}}))


def test_augment_report_rewrites_a_study_from_its_cells(tmp_path):
    """augment-report: the two-way interval and Holm p in report.md and results.json, the old
    runs-only interval kept and labelled; a listed cell whose file is gone is a one-line error."""
    import json

    from click.testing import CliRunner

    from commands.augment import report_command

    arm, base = _pairs(6, 2, runs=3)
    cells = [{"arm": name, "fold": f, "seed": 0, "failure": None, "test": t}
             for name, reports in (("r=0", base), ("r=1", arm)) for f, t in enumerate(reports)]
    _study_folder(tmp_path, cells)
    result = CliRunner().invoke(report_command, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["summary"]["r=1"]["gain_two_way"]["accuracy"]["method"].startswith("two-way")
    text = (tmp_path / "report.md").read_text()
    assert "95 % interval over training runs and test images" in text and "| accuracy p | Holm p |" in text
    assert "Runs-only intervals" in text and (tmp_path / "gain.png").is_file()
    (tmp_path / "cells" / "r=1" / "fold2-seed0.json").unlink()
    result = CliRunner().invoke(report_command, [str(tmp_path)])
    assert result.exit_code == 1 and "results.json lists this cell, but its file is missing" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_pair_scored_on_other_images_with_the_same_labels_is_refused():
    arm, base = _pairs(6, 2, runs=3)
    for report in (*arm, *base):
        report["images"] = "shared-test-set"
    arm[1] = arm[1] | {"images": "another-set"}
    with pytest.raises(ValueError, match="^a pair's two runs were scored on different test images$"):
        intervals.two_way(arm, base, list(CLASSES))


def test_a_cell_written_before_test_images_were_fingerprinted_pairs_with_one_that_has_it():
    """Older cells carry no `images`; they pair with a newer cell of the same labels whichever side
    the fingerprint is on, and give the interval they give without any fingerprint."""
    arm, base = _pairs(6, 2, runs=3)
    plain = intervals.two_way(arm, base, list(CLASSES), draws=200)
    for newer in (arm, base):
        marked = [report | {"images": "shared-test-set"} for report in newer]
        pairs = (marked, base) if newer is arm else (arm, marked)
        assert intervals.two_way(*pairs, list(CLASSES), draws=200) == plain


def test_no_pairs_is_refused_by_name():
    with pytest.raises(ValueError, match="^no pairs to compare$"):
        intervals.two_way([], [], list(CLASSES))


@pytest.mark.parametrize("gain, loss", [(40, 0), (6, 2), (0, 12)])
def test_the_interval_brackets_the_gain_and_mirrors_when_the_arms_swap(gain, loss):
    """Swapping arm and base negates every gain and mirrors its interval (the same draws of runs
    and images serve both), so the two ends use quantiles alpha/2 and 1 - alpha/2; the observed
    gain, a mean over runs, lies inside its interval."""
    arm, base = _pairs(gain, loss, runs=5, jitter=3)
    forward = intervals.two_way(arm, base, list(CLASSES), draws=400)
    backward = intervals.two_way(base, arm, list(CLASSES), draws=400)
    for name, f in forward.items():
        b = backward[name]
        assert b["mean"] == pytest.approx(-f["mean"]) and b["p"] == f["p"], name
        assert b["low"] == pytest.approx(-f["high"]) and b["high"] == pytest.approx(-f["low"]), name
        assert f["low"] <= f["mean"] <= f["high"], name
    assert forward["accuracy"]["mean"] == pytest.approx((gain - loss) / N, abs=3 / N)
    half = intervals.two_way(arm, base, list(CLASSES), confidence=0.5, draws=400)["accuracy"]
    whole = forward["accuracy"]
    assert whole["low"] < half["low"] <= half["high"] < whole["high"]  # the same draws, a narrower interval


def test_the_percentile_summary_of_hand_made_draws():
    low, high, p = intervals.percentile_summary(np.arange(-2.0, 8.0), confidence=0.8)  # -2 .. 7
    assert (low, high) == (pytest.approx(-1.1), pytest.approx(6.1))  # quantiles 0.1 and 0.9
    assert p == pytest.approx(0.6)  # 3 of 10 draws at or below 0
    assert intervals.percentile_summary(np.arange(-7.0, 3.0), confidence=0.8)[2] == pytest.approx(0.6)  # 0, 1, 2
    assert intervals.percentile_summary(np.zeros(10))[2] == 1.0  # no difference in any draw
    assert intervals.percentile_summary(np.arange(1.0, 11.0))[2] == pytest.approx(0.1)  # floor: 1 / draws


def test_runs_share_an_image_draw_exactly_when_they_scored_the_same_images():
    labels = list(range(4)) * 5
    same = {"labels": labels, "images": "set-a"}
    reports = [same, dict(same), {"labels": labels, "images": "set-b"}, {"labels": labels[::-1], "images": "set-a"}]
    weights = intervals._image_weights(reports, np.random.default_rng(0), draws=50)
    assert weights[0] is weights[1]  # one draw of images serves both runs of set a
    assert not np.array_equal(weights[0], weights[2])  # same labels, other images: a draw of its own
    assert not np.array_equal(weights[0], weights[3])  # other labels: other images
    assert all(w.shape == (50, 20) and (w.sum(1) == 20).all() for w in weights)


def test_a_class_absent_from_labels_and_predictions_has_f1_zero():
    labels, predicted = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    weights = np.array([[1.0, 1, 1, 1], [2, 0, 2, 0]])
    got = intervals.scores(predicted, labels, ["A", "B", "C"], weights)
    assert got["C/f1"].tolist() == [0.0, 0.0]
    assert got["A/f1"] == pytest.approx([2 / 3, 1.0]) and got["B/f1"] == pytest.approx([0.8, 1.0])
    assert got["macro_f1"] == pytest.approx([(2 / 3 + 0.8) / 3, 2 / 3])
    assert got["accuracy"] == pytest.approx([0.75, 1.0])
