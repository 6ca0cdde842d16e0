"""The fidelity filter and the teacher labels on their own, without a sweep: the filter's
direction and threshold, the teacher's targets, and the reference classifier's cache (trained
once per identity, found in another study folder, refused when it did not learn). Fast enough to
run for every mutant of augment/filtering.py (docs/mutation.md)."""

import json
from dataclasses import replace

import pytest
import torch

from augment import filtering
from augment.filtering import accept_by_fidelity, reference_classifier, teacher_targets
from classifier.engine import TrainSettings, evaluate, fit, predict
from classifier.export import load_classifier
from classifier.health import ClassifierCollapsed
from classifier.models import build_model
from tests.helpers import synthetic_set
from wgan import checkpoint
from wgan.data import GENERATED_SOURCE

CPU = torch.device("cpu")
SETTINGS = TrainSettings(model="cnn", epochs=1, batch_size=16)


class Logits(torch.nn.Module):
    """A hand-made classifier: the same logits for every image."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def images(n: int) -> torch.Tensor:
    return torch.zeros((n, 8, 8), dtype=torch.uint8)


def test_an_image_is_dropped_only_when_another_class_is_more_probable_than_the_threshold():
    tie = Logits([0.0, 0.0, -float("inf"), -float("inf")])  # classes 0 and 1 at exactly 0.5 each
    labels = torch.tensor([0, 1, 2])
    assert accept_by_fidelity(tie, 0.5, CPU, tta=False)(images(3), labels).tolist() == [True, True, True]
    assert accept_by_fidelity(tie, 0.49, CPU, tta=False)(images(3), labels).tolist() == [True, False, False]
    sure = Logits([0.0, 9.0, 0.0, 0.0])  # class 1 at 0.9996
    assert accept_by_fidelity(sure, 0.9, CPU, tta=False)(images(3), labels).tolist() == [False, True, False]


class Corner(torch.nn.Module):
    """Confident in class 0 when the top-left pixel is bright, else unsure: a classifier with a
    preferred orientation, which test-time augmentation averages out."""

    def forward(self, x):
        corner = x[:, 0, 0, 0]
        return torch.stack([10 * corner, torch.zeros_like(corner), torch.zeros_like(corner), torch.zeros_like(corner)], 1)


def test_the_filter_judges_with_test_time_augmentation_when_asked():
    image = torch.zeros((1, 8, 8), dtype=torch.uint8)
    image[0, 0, 0] = 255
    label = torch.tensor([1])
    # one view: class 0 at 0.9999, so the FRII image is dropped; the mean over the 8 views puts the
    # bright pixel in the corner for 2 of them only (class 0 at about 0.25): kept
    assert accept_by_fidelity(Corner(), 0.9, CPU, tta=False)(image, label).tolist() == [False]
    assert accept_by_fidelity(Corner(), 0.9, CPU, tta=True)(image, label).tolist() == [True]
    mixed = synthetic_set(2, size=8)
    mixed.images[1] = image[0]
    assert teacher_targets(Corner(), mixed, 1, CPU, tta=True)[1, 0] < 0.3 < teacher_targets(Corner(), mixed, 1, CPU,
                                                                                            tta=False)[1, 0]


def test_teacher_targets_keep_the_real_labels_and_give_the_generated_images_the_classifiers_probabilities():
    mixed = synthetic_set(10, size=32)
    mixed.source[6:] = GENERATED_SOURCE
    model = Logits([1.0, 2.0, 0.0, -1.0])
    targets = teacher_targets(model, mixed, 6, CPU, tta=False)
    assert targets.shape == (10, 4) and targets.dtype == torch.float32
    assert torch.equal(targets[:6], torch.nn.functional.one_hot(mixed.labels[:6], 4).float())
    expected = torch.softmax(torch.tensor([1.0, 2.0, 0.0, -1.0]), 0)
    torch.testing.assert_close(targets[6:], expected.expand(4, -1))
    assert torch.equal(mixed.labels, torch.arange(10) % 4)  # the set's own labels untouched
    mixed.labels[:6] = torch.tensor([0, 1, 0, 1, 0, 1])  # real images of two of the four classes
    assert teacher_targets(model, mixed, 6, CPU, tta=False).shape == (10, 4)


def sets(labels_of_training=None):
    real, valid = synthetic_set(48, size=32, seed=0), synthetic_set(24, size=32, seed=1)
    if labels_of_training is not None:
        real.labels = torch.full_like(real.labels, labels_of_training)
    return real, valid


@pytest.fixture
def checked(one_epoch_references_pass):
    """The reports the collapse check is given instead of judging them (tests/conftest.py): a
    one-epoch classifier on blobs may not learn."""
    return one_epoch_references_pass


def test_the_reference_classifier_is_trained_once_and_found_again(tmp_path, checked, monkeypatch):
    real, valid = sets()
    model = reference_classifier(tmp_path, SETTINGS, 3, {"fold": 0}, real, valid, CPU)
    (path,) = (tmp_path / "filters").glob("classifier-*.pt")
    export = load_classifier(path, CPU)
    settings = json.loads(checkpoint.load(path, checkpoint.CLASSIFIER_EXPORT)["settings"])
    assert settings["seed"] == 3 and settings["epochs"] == 1
    assert settings["steps_per_epoch"] == 3  # ceil(48 / 16): one pass over the real images
    assert export.data["fold"] == 0 and export.data["identity"]["valid"] == valid.fingerprint
    probe = synthetic_set(8, size=32, seed=5).images
    torch.testing.assert_close(predict(export.model, probe, CPU), predict(model, probe, CPU))
    # the report checked for collapse is the validation set's, in the split's name
    assert checked[-1]["split"] == "validation" and sum(map(sum, checked[-1]["confusion_matrix"])) == 24

    monkeypatch.setattr(filtering, "fit", lambda *args, **kwargs: pytest.fail("trained again"))
    again = reference_classifier(tmp_path, SETTINGS, 3, {"fold": 0}, real, valid, CPU)
    torch.testing.assert_close(predict(again, probe, CPU), predict(model, probe, CPU))
    assert len(checked) == 2  # a cached classifier is checked too


def test_the_reference_is_the_real_only_classifier_of_the_cell_and_trains_quietly(tmp_path, checked, capsys):
    real, valid = sets()
    for data in (real, valid):  # a survey of three classes
        data.class_names, data.labels = ("A", "B", "C"), data.labels % 3
    settings = TrainSettings(model="cnn", epochs=2, batch_size=16, tta=True, amp=True)
    model = reference_classifier(tmp_path, settings, 3, {"fold": 0}, real, valid, CPU)
    assert capsys.readouterr().err == ""  # a worker's cell prints nothing of its own
    # the real-only classifier the reference arm trains: seeded by the cell's seed, one pass per epoch
    own = replace(settings, seed=3, steps_per_epoch=3)
    expected = fit(build_model("cnn", 32, 3, seed=3), real, valid, own, CPU, progress=False).model
    probe = synthetic_set(8, size=32, seed=5).images
    assert torch.equal(predict(model, probe, CPU), predict(expected, probe, CPU))
    (path,) = (tmp_path / "filters").glob("classifier-*.pt")
    assert load_classifier(path, CPU).metrics == {"best_epoch": fit(build_model("cnn", 32, 3, seed=3), real, valid, own,
                                                                    CPU, progress=False).best_epoch}
    # judged for collapse as it will judge: with the settings' test-time augmentation and bf16 autocast
    reference = evaluate(expected, valid, CPU, amp=True, tta=True)
    assert reference["loss"] != pytest.approx(evaluate(expected, valid, CPU, amp=False, tta=True)["loss"], abs=1e-6)
    assert checked[-1]["loss"] == pytest.approx(reference["loss"], abs=1e-6)
    assert checked[-1]["predicted"] == reference["predicted"]


def test_the_reference_file_is_named_by_a_hash_of_its_identity_that_never_changes(tmp_path, checked):
    """Studies keep their reference classifiers under filters/ by this name (the confirmatory
    study's four under runs/): another name would train every one again."""
    real, valid = sets()
    real.fingerprint, valid.fingerprint = "train-fingerprint", "valid-fingerprint"
    reference_classifier(tmp_path, SETTINGS, 3, {"fold": 0}, real, valid, CPU)
    assert [p.name for p in (tmp_path / "filters").glob("*.pt")] == ["classifier-7498fc2d3be2052a.pt"]


@pytest.mark.parametrize("change", ["seed", "settings", "data", "train", "valid"])
def test_another_reference_for_anything_that_changes_it(tmp_path, checked, change):
    real, valid = sets()
    reference_classifier(tmp_path, SETTINGS, 3, {"fold": 0}, real, valid, CPU)
    args = {"base": SETTINGS, "seed": 3, "data": {"fold": 0}, "real": real, "valid": valid}
    args |= {"seed": {"seed": 4}, "settings": {"base": TrainSettings(model="cnn", epochs=1, batch_size=8)},
             "data": {"data": {"fold": 1}}, "train": {"real": synthetic_set(48, size=32, seed=2)},
             "valid": {"valid": synthetic_set(24, size=32, seed=3)}}[change]
    reference_classifier(tmp_path, args["base"], args["seed"], args["data"], args["real"], args["valid"], CPU)
    assert len(list((tmp_path / "filters").glob("classifier-*.pt"))) == 2


def test_a_reference_trained_by_another_study_folder_is_taken_from_there(tmp_path, checked, monkeypatch):
    real, valid = sets()
    reference_classifier(tmp_path / "first", SETTINGS, 0, {"fold": 0}, real, valid, CPU)
    monkeypatch.setattr(filtering, "fit", lambda *args, **kwargs: pytest.fail("trained again"))
    reference_classifier(tmp_path / "second", SETTINGS, 0, {"fold": 0}, real, valid, CPU,
                         reuse_from=(tmp_path / "empty", tmp_path / "first"))
    assert not (tmp_path / "second" / "filters").exists()


def test_a_reference_that_calls_everything_one_class_is_refused(tmp_path):
    real, valid = sets(labels_of_training=2)  # it has only ever seen Compact
    with pytest.raises(ClassifierCollapsed) as error:
        reference_classifier(tmp_path, SETTINGS, 5, {"fold": 0}, real, valid, CPU)
    (path,) = (tmp_path / "filters").glob("classifier-*.pt")
    assert str(error.value) == (f"the reference classifier of seed 5 ({path}) did not learn (collapsed: 100% of its "
                                "predictions are Compact on its validation images); it cannot serve as the fidelity "
                                "filter's or teacher's reference: give it more epochs (--reference-epochs; the tuned "
                                "recipe's 300 learn)")
