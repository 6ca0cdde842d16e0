"""`fit` and evaluation with tiny linear models on 8 px images: early stopping and the validation
metric that picks the epoch, the seed, the schedule's length, soft targets and fresh images
reaching every epoch, test-time augmentation and autocast where the settings ask for them, the
images BatchNorm is recalibrated on, and the content hash that pairs study cells. Fast enough to
run for every mutant of classifier/engine.py (docs/mutation.md)."""

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classifier.engine import (
    TrainSettings,
    _calibration_images,
    content_hash,
    evaluate,
    fit,
    predict,
    selection_score,
)
from tests.helpers import synthetic_set
from tests.test_classifier_training import CPU, Constant, linear
from wgan.data import GENERATED_SOURCE


def test_patience_stops_after_that_many_epochs_without_a_better_score():
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    settings = TrainSettings(epochs=10, lr=0.0, warmup_epochs=0, batch_size=8, patience=3)
    logged = []
    result = fit(linear(), train, valid, settings, CPU, log=lambda epoch, row: logged.append(epoch), progress=False)
    assert result.best_epoch == 1 and len(result.history) == 4 and logged == [1, 2, 3, 4]  # lr 0: nothing improves
    assert len(fit(linear(), train, valid, TrainSettings(epochs=5, lr=0.0, warmup_epochs=0, batch_size=8), CPU,
                   progress=False).history) == 5


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "loss"])
def test_the_best_epoch_is_the_best_validation_score_and_its_weights_are_returned(metric):
    train, valid = synthetic_set(32, size=8), synthetic_set(16, size=8, seed=1)
    settings = TrainSettings(epochs=6, lr=0.05, batch_size=8, select_on=metric, seed=2)
    result = fit(linear(seed=2), train, valid, settings, CPU, progress=False)
    scores = [row[f"valid/{metric}"] * (-1 if metric == "loss" else 1) for row in result.history]
    assert len(set(scores)) > 1
    assert result.best_epoch == int(np.argmax(scores)) + 1
    final = evaluate(result.model, valid, CPU)
    assert selection_score(final, metric) == pytest.approx(scores[result.best_epoch - 1])
    rows = result.history
    assert [row["epoch"] for row in rows] == list(range(1, 7))
    assert all(0 <= row["train/accuracy"] <= 1 and row["train/loss"] > 0 for row in rows)


def test_soft_targets_are_refused_where_they_cannot_apply():
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    settings = TrainSettings(epochs=2, batch_size=8)
    with pytest.raises(ValueError, match="^soft targets need a fixed training set with one row of class probabilities "
                                         "per image$"):
        fit(linear(), train, valid, settings, CPU, progress=False, targets=torch.ones(15, 4) / 4)
    with pytest.raises(ValueError, match="^soft targets need a fixed training set with one row of class probabilities "
                                         "per image$"):
        fit(linear(), train, valid, settings, CPU, progress=False, targets=torch.ones(16, 4) / 4,
            fresh=lambda labels: torch.zeros(len(labels), 8, 8, dtype=torch.uint8))
    changing = {1: train, 2: synthetic_set(16, size=8, seed=2)}
    with pytest.raises(ValueError, match="^soft targets need a fixed training set; this one changes between epochs$"):
        fit(linear(), changing.__getitem__, valid, settings, CPU, progress=False, targets=torch.ones(16, 4) / 4)
    fit(linear(), train, valid, settings, CPU, progress=False, targets=torch.ones(16, 4) / 4)  # the right shape runs


def test_class_weights_reach_training_from_the_first_epochs_set():
    valid = synthetic_set(8, size=8, seed=1)
    balanced = synthetic_set(16, size=8)
    imbalanced = synthetic_set(16, size=8)
    imbalanced.labels = torch.tensor([0] * 10 + [1, 2, 3, 1, 2, 3])

    def weights(first, weighted):
        sets = {1: first, 2: balanced}
        settings = TrainSettings(epochs=2, batch_size=8, class_weighted=weighted, seed=1, dihedral=False)
        return fit(linear(), sets.__getitem__, valid, settings, CPU, progress=False).model[1].weight

    # the weights of epoch 1's imbalanced set hold in epoch 2 too, whose set is balanced
    assert not torch.equal(weights(imbalanced, True), weights(imbalanced, False))
    assert torch.equal(weights(balanced, True), weights(balanced, False))


def test_evaluation_reports_the_mean_cross_entropy_the_predictions_and_which_images():
    data = synthetic_set(8, size=8)
    logits = torch.tensor([0.5, 2.0, -1.0, 0.0])
    report = evaluate(Constant(logits.tolist()), data, CPU)
    log_p = F.log_softmax(logits, 0)
    assert report["loss"] == pytest.approx(-log_p[data.labels].mean().item())
    assert report["predicted"] == [1] * 8 and report["labels"] == data.labels.tolist()
    assert report["accuracy"] == pytest.approx(2 / 8) and report["images"] == content_hash(data)


def test_the_content_hash_names_the_images_and_their_labels():
    data = synthetic_set(8, size=8)
    same = synthetic_set(8, size=8)
    same.fingerprint = "loaded another way"
    assert content_hash(data) == content_hash(same)
    relabelled = synthetic_set(8, size=8)
    relabelled.labels = relabelled.labels.flip(0)
    brighter = synthetic_set(8, size=8)
    brighter.images[0, 0, 0] += 1
    assert len({content_hash(data), content_hash(relabelled), content_hash(brighter)}) == 3


def test_batchnorm_is_recalibrated_on_the_real_training_images():
    data = synthetic_set(8, size=8)
    data.source[5:] = GENERATED_SOURCE
    assert torch.equal(_calibration_images(data, None), data.images[:5])
    generated_only = synthetic_set(8, size=8)
    generated_only.source[:] = GENERATED_SOURCE
    assert torch.equal(_calibration_images(generated_only, None), generated_only.images)  # pre-training
    assert _calibration_images(generated_only, lambda labels: None) is None  # placeholders for a stream


def test_the_order_of_the_images_is_drawn_from_the_settings_seed_alone():
    """Not from the global random state (which model building and other code move): two runs of
    one seed agree whatever happened before, and another seed trains other weights from the same
    initial ones."""
    train, valid = synthetic_set(32, size=8), synthetic_set(8, size=8, seed=1)

    def trained(seed, global_seed):
        model = linear(seed=0)
        torch.manual_seed(global_seed)
        settings = TrainSettings(epochs=2, batch_size=8, seed=seed)
        return fit(model, train, valid, settings, CPU, progress=False).model[1].weight

    assert torch.equal(trained(1, global_seed=10), trained(1, global_seed=20))
    assert not torch.equal(trained(1, global_seed=10), trained(2, global_seed=10))


@pytest.mark.parametrize("steps_per_epoch", [None, 3])
def test_the_learning_rate_reaches_zero_at_the_last_step(steps_per_epoch):
    """The cosine schedule spans exactly the run's steps: one pass over the set per epoch (or the
    fixed number of steps), so the rate ends at zero, not part-way down."""
    train, valid = synthetic_set(20, size=8), synthetic_set(8, size=8, seed=1)
    settings = TrainSettings(epochs=3, batch_size=8, warmup_epochs=1, lr=0.01, steps_per_epoch=steps_per_epoch)
    history = fit(linear(), train, valid, settings, CPU, progress=False).history
    assert history[-1]["train/lr"] == pytest.approx(0.0, abs=1e-12)
    assert history[0]["train/lr"] == pytest.approx(0.01)  # the end of the one warm-up epoch: the full rate


def test_with_soft_targets_the_class_weights_come_from_their_probability_mass():
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)  # labels balanced: weights 1
    targets = torch.zeros(16, 4)
    targets[:, 0], targets[:4] = 0.7, torch.tensor([0.1, 0.1, 0.1, 0.7])  # FRI holds most of the mass
    targets[4:, 1:] = 0.1

    def trained(weighted):
        settings = TrainSettings(epochs=1, batch_size=8, class_weighted=weighted, dihedral=False)
        return fit(linear(), train, valid, settings, CPU, progress=False, targets=targets).model[1].weight

    assert not torch.equal(trained(True), trained(False))


def test_training_shows_its_progress_in_epochs_by_default(capsys):
    """Plain lines where stderr is no terminal (a batch job's log): epochs done, the validation
    accuracy and the best epoch so far."""
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    result = fit(linear(), train, valid, TrainSettings(epochs=2, batch_size=8), CPU)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "classifier: 0/2 epoch (0%)"
    accuracy = result.history[-1]["valid/accuracy"]
    assert lines[-1].startswith("classifier: 2/2 epoch (100%)")
    assert lines[-1].endswith(f", valid_acc={accuracy:.3f} best={result.best_epoch}")


def test_fit_hands_fresh_images_and_soft_targets_to_every_epoch_and_is_silent_when_asked(capsys):
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    train.source[10:] = GENERATED_SOURCE
    drawn = []

    def fresh(labels):
        drawn.append(len(labels))
        return torch.zeros((len(labels), 8, 8), dtype=torch.uint8)

    settings = TrainSettings(epochs=2, batch_size=8, dihedral=False)
    fit(linear(), train, valid, settings, CPU, progress=False, fresh=fresh)
    assert sum(drawn) == 2 * 6  # every generated image, in both epochs
    uniform = torch.full((16, 4), 0.25)  # soft targets that carry no class at all
    with_targets = fit(linear(), train, valid, settings, CPU, progress=False, targets=uniform).model[1].weight
    assert not torch.equal(with_targets, fit(linear(), train, valid, settings, CPU, progress=False).model[1].weight)
    assert capsys.readouterr().err == ""  # a cell inside a sweep prints nothing of its own


def test_the_content_hash_is_the_sha256_of_the_images_and_int64_labels_cut_to_24_digits():
    """Study cells store it to pair runs scored on the same test images (augment.intervals):
    another derivation would stop committed cells from pairing."""
    data = synthetic_set(8, size=8)
    expected = hashlib.sha256(data.images.numpy().tobytes() + data.labels.numpy().astype("int64").tobytes())
    assert content_hash(data) == expected.hexdigest()[:24]


def test_evaluation_and_the_epochs_validation_use_test_time_augmentation_and_autocast_when_set():
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    model = linear(seed=4)  # a linear map of the pixels: not invariant to rotations
    reports = {(amp, tta): evaluate(model, valid, CPU, amp=amp, tta=tta) for amp in (False, True) for tta in (False, True)}
    for (amp, tta), report in reports.items():
        probs = predict(model, valid.images, CPU, amp=amp, tta=tta)
        assert report["loss"] == pytest.approx(-probs[torch.arange(8), valid.labels].log().mean().item())
    assert len({round(report["loss"], 9) for report in reports.values()}) == 4
    for amp, tta in ((False, True), (True, False)):
        settings = TrainSettings(epochs=1, batch_size=8, amp=amp, tta=tta)
        result = fit(linear(seed=4), train, valid, settings, CPU, progress=False)
        assert result.history[0]["valid/loss"] == pytest.approx(evaluate(result.model, valid, CPU, amp, tta)["loss"])
        assert result.history[0]["valid/loss"] != pytest.approx(evaluate(result.model, valid, CPU)["loss"])


def test_batchnorm_keeps_its_running_statistics_when_training_sees_only_a_stream_of_fresh_images():
    """Pre-training on a per-batch stream: the set holds placeholders, which must not calibrate
    BatchNorm (they are not what the model saw)."""
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    train.source[:] = GENERATED_SOURCE
    train.images[:] = 0  # placeholders, -1 after scaling
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 4))
    settings = TrainSettings(epochs=1, batch_size=8, batchnorm_stats="recalibrated")
    fit(model, train, valid, settings, CPU, progress=False,
        fresh=lambda labels: torch.full((len(labels), 8, 8), 255, dtype=torch.uint8))
    assert model[0].running_mean.item() > 0  # from the bright fresh images the batches held


def test_oversampling_reaches_the_epochs_batches():
    train, valid = synthetic_set(16, size=8), synthetic_set(8, size=8, seed=1)
    train.labels = torch.tensor([0] * 13 + [1, 2, 3])

    def trained(oversample):
        settings = TrainSettings(epochs=1, batch_size=8, oversample=oversample, seed=1)
        return fit(linear(), train, valid, settings, CPU, progress=False).model[1].weight

    assert not torch.equal(trained(True), trained(False))
