"""Behavioural tests on hand-made classifiers whose behaviour is known, and the corner cases."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from augment import behaviour, corner_cases
from tests.helpers import synthetic_set
from wgan import released
from wgan.data import CLASS_NAMES

CPU = torch.device("cpu")
COMPACT, FRII = CLASS_NAMES.index("Compact"), CLASS_NAMES.index("FRII")


class BrightestQuadrant(nn.Module):
    """Class = the quadrant holding most flux: turning the image changes the answer."""

    def forward(self, x):
        h = x.shape[-1] // 2
        q = [x[..., :h, :h], x[..., :h, h:], x[..., h:, h:], x[..., h:, :h]]
        return torch.stack([(p + 1).sum((1, 2, 3)) for p in q], 1)


class ByExtent(nn.Module):
    """Compact when few pixels are lit, FRII otherwise: blind to orientation."""

    def forward(self, x):
        lit = ((x > -0.9).float().sum((1, 2, 3)) > 8).long()
        logits = torch.zeros(x.shape[0], 4)
        logits[torch.arange(x.shape[0]), torch.where(lit.bool(), FRII, COMPACT)] = 10.0
        return logits


class Always(nn.Module):
    def __init__(self, label):
        super().__init__()
        self.label = label

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 4)
        logits[:, self.label] = 10.0
        return logits


def off_centre_set():
    data = synthetic_set(32, 16)
    data.images[:, :8, :8] = 200  # a bright top-left corner in every image
    return data


def test_invariance_fails_for_an_orientation_dependent_classifier():
    result = behaviour.invariance(BrightestQuadrant(), off_centre_set(), CPU)
    assert not result.passed and result.value == 0.0
    assert set(result.per_class) == set(CLASS_NAMES) and len(result.details["accuracy_per_view"]) == 8


def test_invariance_passes_for_an_orientation_blind_classifier():
    result = behaviour.invariance(ByExtent(), off_centre_set(), CPU)
    assert result.passed and result.value == 1.0


def test_minimum_functionality_fails_for_a_classifier_that_always_says_compact():
    result = behaviour.minimum_functionality(Always(COMPACT), 64, 3.6, CLASS_NAMES, CPU)
    assert not result.passed and result.per_class["FRII"]["accuracy"] == 0.0
    assert result.per_class["Compact"]["accuracy"] == 1.0


def test_minimum_functionality_passes_for_a_classifier_that_separates_points_from_doubles():
    result = behaviour.minimum_functionality(ByExtent(), 64, 3.6, CLASS_NAMES, CPU)
    assert result.passed, result.per_class


def test_reimage_widens_sources_and_keeps_the_first_scaling():
    cases = behaviour.synthetic_sources(64, 3.6, CLASS_NAMES, n=4)
    point = cases.images[:1]
    wide = behaviour.reimage(point, 3.6, beam_arcsec=45, snr=1e6)
    assert wide.dtype == torch.uint8 and wide.max() == 255
    assert (wide > 0).sum() > 10 * (point > 0).sum()
    same = behaviour.reimage(point, 3.6, beam_arcsec=5, snr=1e6)
    assert torch.equal(same, point)
    noisy = behaviour.reimage(point, 3.6, beam_arcsec=5, snr=5, seed=1)
    assert torch.equal(noisy, behaviour.reimage(point, 3.6, beam_arcsec=5, snr=5, seed=1))
    with pytest.raises(ValueError, match="sharper"):
        behaviour.reimage(point, 3.6, beam_arcsec=2, snr=10)


def test_survey_shift_reports_the_accuracy_drop():
    data = off_centre_set()
    steady = behaviour.survey_shift(Always(COMPACT), data, CPU, beam_arcsec=45, snr=10)
    assert steady.value == 0.0 and steady.passed
    assert behaviour.survey_shift(Always(COMPACT), data, CPU, 45, 10, max_drop=-0.01).passed is False


def test_corner_cases_find_blank_faint_and_baseline_errors_and_flips():
    data = synthetic_set(40, 16)
    data.images[5] = 0  # blank
    full = synthetic_set(40, 32)
    full.images[:] = 0
    full.images[7, 0, 0] = 255  # all of image 7's flux lies outside the centre 16 px crop
    labels = data.labels.tolist()
    wrong_twice = [(labels[i] + 1) % 4 if i == 3 else labels[i] for i in range(40)]
    cases = corner_cases.build(data, full, 16, [wrong_twice, wrong_twice, labels])
    kinds = {c["index"]: c["kinds"] for c in cases["cases"]}
    assert "blank" in kinds[5] and "baseline-wrong" in kinds[3] and "outside-crop" in kinds[7]
    assert cases["counts"]["blank"] == 1 and cases["counts"]["baseline-wrong"] == 1
    before = corner_cases.outcomes(cases, labels)
    assert all(before.values())
    after_pred = list(labels)
    after_pred[3] = (labels[3] + 1) % 4
    flipped = corner_cases.flips(before, corner_cases.outcomes(cases, after_pred))
    assert flipped == [c["id"] for c in cases["cases"] if c["index"] == 3]
    assert np.all([c["id"].startswith("test-") for c in cases["cases"]])


def test_a_corner_case_list_is_checked_against_the_images_it_names():
    data = synthetic_set(40, 16)
    data.images[5] = 0
    cases = corner_cases.build(data, synthetic_set(40, 32), 16, [data.labels.tolist()])
    corner_cases.check_matches(cases, data, "list.json")  # its own test set fits
    moved = json.loads(json.dumps(cases))
    moved["test_fingerprint"] = "another:format"  # a new fingerprint format alone changes nothing
    corner_cases.check_matches(moved, data, "list.json")
    changed = synthetic_set(40, 16)
    changed.images[5] = 1  # the blank case's image is no longer blank
    with pytest.raises(ValueError, match=r"list.json: case test-0005-\w+ is not in this test set"):
        corner_cases.check_matches(cases, changed, "list.json")
    with pytest.raises(ValueError, match="is not in this test set"):
        corner_cases.check_matches(cases, synthetic_set(4, 16), "list.json")  # fewer images
    renamed = json.loads(json.dumps(cases))
    renamed["class_names"] = ["A", "B", "C", "D"]
    with pytest.raises(ValueError, match="built for classes A, B, C, D"):
        corner_cases.check_matches(renamed, data, "list.json")


def test_the_released_corner_case_list_fits_the_first_test_set(first):
    """augment-cml checks every FIRST generator against this list; a list that no longer fits
    stops every such check (it did once, after the cache key changed format)."""
    test = first(crop=128, resolution=64, split="cv", subset="test")
    cases = json.loads(released.CORNER_CASES.read_text())
    corner_cases.check_matches(cases, test, "released")  # raises when the list does not fit
    assert cases["cases"] and all(test.class_names[int(test.labels[c["index"]])] == c["label"] for c in cases["cases"])
