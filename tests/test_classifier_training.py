"""The classifier's training loop in small pieces, with tiny linear models on 8 px images so every
case runs in a fraction of a second: the loss and its class weights against their formulas, the
epoch's order, the optimizers, what one epoch reports, early stopping and the validation metric
that picks the epoch, evaluation, and the images BatchNorm is recalibrated on. Fast enough to
run for every mutant of classifier/engine.py (docs/mutation.md); tests/test_classifier.py trains
the real models."""

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classifier.engine import (
    TrainSettings,
    _calibration_images,
    _loss,
    class_weights,
    content_hash,
    epoch_order,
    evaluate,
    fit,
    make_optimizer,
    predict,
    selection_score,
    train_one_epoch,
)
from tests.helpers import synthetic_set
from wgan.data import GENERATED_SOURCE
from wgan.distributed import SINGLE, Shard

CPU = torch.device("cpu")


def linear(size: int = 8, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size * size, 4))


class Constant(torch.nn.Module):
    """The same logits for every image; one trainable parameter so an optimizer has something."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


LOGITS = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4], [-2.0, 1.0, 0.0, 3.0], [1.0, 1.0, 1.0, -1.0],
                       [0.0, -0.5, 2.5, 1.0]])
LABELS = torch.tensor([0, 3, 3, 1, 2])
WEIGHTS = torch.tensor([2.0, 0.5, 1.0, 1.5])


def test_the_hard_label_loss_is_the_weighted_mean_cross_entropy():
    per_image = -F.log_softmax(LOGITS, 1)[torch.arange(5), LABELS]
    torch.testing.assert_close(_loss(LOGITS, LABELS, LABELS, None, SINGLE), per_image.mean())
    w = WEIGHTS[LABELS]
    torch.testing.assert_close(_loss(LOGITS, LABELS, LABELS, WEIGHTS, SINGLE), (w * per_image).sum() / w.sum())


@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_ranks_share_the_hard_label_loss_so_their_mean_is_the_global_one(weights):
    single = _loss(LOGITS, LABELS, LABELS, weights, SINGLE)
    for world in (2, 3):
        shares = [_loss(Shard(r, world).take(LOGITS), Shard(r, world).take(LABELS), LABELS, weights, Shard(r, world))
                  for r in range(world)]
        torch.testing.assert_close(sum(shares) / world, single)


def test_the_soft_target_loss_is_its_formula():
    targets = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), 1)
    log_p = F.log_softmax(LOGITS, 1)
    torch.testing.assert_close(_loss(LOGITS, targets, targets, None, SINGLE), -(targets * log_p).sum() / 5)
    weighted = -(targets * WEIGHTS * log_p).sum() / (targets * WEIGHTS).sum()
    torch.testing.assert_close(_loss(LOGITS, targets, targets, WEIGHTS, SINGLE), weighted)
    half = Shard(0, 2)  # a rank's share: its sum over the global normaliser, times the ranks
    torch.testing.assert_close(_loss(LOGITS[:3], targets[:3], targets, WEIGHTS, half),
                               -(targets[:3] * WEIGHTS * log_p[:3]).sum() / (targets * WEIGHTS).sum() * 2)


def test_class_weights_are_inverse_frequencies_of_labels_or_of_probability_mass():
    assert torch.equal(class_weights(torch.arange(8) % 4, 4), torch.ones(4))
    torch.testing.assert_close(class_weights(torch.tensor([0, 0, 0, 1, 2, 3]), 4),
                               torch.tensor([6 / 12, 6 / 4, 6 / 4, 6 / 4]))
    absent = class_weights(torch.tensor([0, 0, 1, 1]), 4)  # classes 2 and 3 count as one image each
    torch.testing.assert_close(absent, torch.tensor([6 / 8, 6 / 8, 6 / 4, 6 / 4]))
    soft = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 1.0]])
    # the labels are ignored when probability rows are given: masses 1.5, 0.5 -> 1 (floor), 3, 1
    torch.testing.assert_close(class_weights(torch.zeros(3, dtype=torch.long), 4, soft),
                               torch.tensor([6.5 / 6, 6.5 / 4, 6.5 / 12, 6.5 / 4]))


def test_an_epoch_is_a_permutation_or_several_chained_for_a_fixed_number_of_steps():
    labels = torch.arange(10) % 4
    one = epoch_order(labels, TrainSettings(batch_size=4), torch.Generator().manual_seed(0), 4)
    assert sorted(one.tolist()) == list(range(10))
    longer = epoch_order(labels, TrainSettings(batch_size=4, steps_per_epoch=6), torch.Generator().manual_seed(0), 4)
    assert len(longer) == 24 and sorted(longer[:10].tolist()) == sorted(longer[10:20].tolist()) == list(range(10))
    assert len(set(longer[20:].tolist())) == 4
    again = epoch_order(labels, TrainSettings(batch_size=4, steps_per_epoch=6), torch.Generator().manual_seed(0), 4)
    assert torch.equal(longer, again)


def test_oversampling_draws_the_classes_evenly_for_the_epochs_length():
    labels = torch.tensor([0] * 90 + [1] * 10)
    settings = TrainSettings(oversample=True, batch_size=10, steps_per_epoch=50)
    order = epoch_order(labels, settings, torch.Generator().manual_seed(0), 2)
    assert len(order) == 500
    rare = (labels[order] == 1).float().mean().item()
    assert 0.4 < rare < 0.6  # about half, where a plain draw gives 0.1
    assert len(epoch_order(labels, TrainSettings(oversample=True), torch.Generator().manual_seed(0), 2)) == 100


def test_the_optimizers_take_their_settings():
    model = torch.nn.Linear(2, 2)
    sgd, _ = make_optimizer(model, TrainSettings(optimizer="sgd", lr=0.1, weight_decay=0.01, warmup_epochs=0), 3)
    group = sgd.param_groups[0]
    assert isinstance(sgd, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, True, 0.01)
    adamw, schedule = make_optimizer(model, TrainSettings(lr=0.01, weight_decay=0.05, warmup_epochs=0, epochs=2), 3)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["weight_decay"] == 0.05
    rates = []
    for _ in range(6):
        rates.append(schedule.get_last_lr()[0])
        adamw.step()
        schedule.step()
    # no warm-up: a half cosine from the full rate over the 6 steps
    assert rates == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(6)])
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        make_optimizer(model, TrainSettings(optimizer="lamb"), 3)


def test_an_epoch_reports_the_mean_loss_and_accuracy_over_its_images():
    data = synthetic_set(10, size=8)  # labels 0 1 2 3 0 1 2 3 0 1
    model = Constant([0.0, 2.0, 0.0, 0.0])  # always FRII
    settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=4, dihedral=False)
    optimizer, scheduler = make_optimizer(model, settings, 3)
    stats = train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(0), CPU)
    log_p = F.log_softmax(torch.tensor([0.0, 2.0, 0.0, 0.0]), 0)
    assert stats["accuracy"] == pytest.approx(3 / 10)
    assert stats["loss"] == pytest.approx(-(3 * log_p[0] + 3 * log_p[1] + 2 * log_p[2] + 2 * log_p[3]).item() / 10)
    assert stats["lr"] == 0.0 and model.training


def test_fresh_images_replace_the_generated_ones_of_every_batch_and_only_those():
    data = synthetic_set(8, size=8)
    data.source[4:] = GENERATED_SOURCE
    data.images[4:] = 0
    seen = []

    class Recorder(Constant):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    drawn = []

    def fresh(labels):
        drawn.append(labels.clone())
        return torch.full((len(labels), 8, 8), 255, dtype=torch.uint8)

    model = Recorder([0.0, 0.0, 0.0, 0.0])
    settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=4, dihedral=False)
    optimizer, scheduler = make_optimizer(model, settings, 2)
    train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(0), CPU, fresh=fresh)
    order = epoch_order(data.labels, settings, torch.Generator().manual_seed(0), 4)
    shown = torch.cat(seen)[:, 0]
    generated = order >= 4
    assert (shown[generated] == 1).all()  # the fresh images, at full brightness
    torch.testing.assert_close(shown[~generated], data.images[order[~generated]].float() / 127.5 - 1)
    assert torch.equal(torch.cat(drawn), data.labels[order[generated]])  # of the classes they replace
    assert (data.images[4:] == 0).all()  # the set itself untouched


def test_generated_images_enter_as_drawn_when_asked_while_real_ones_are_augmented():
    data = synthetic_set(8, size=8)
    data.source[4:] = GENERATED_SOURCE
    seen = []

    class Recorder(Constant):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    def shown(augment_generated):
        seen.clear()
        model = Recorder([0.0, 0.0, 0.0, 0.0])
        settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=8, augment_generated=augment_generated)
        optimizer, scheduler = make_optimizer(model, settings, 1)
        train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(1), CPU)
        return torch.cat(seen)[:, 0]

    order = epoch_order(data.labels, TrainSettings(batch_size=8), torch.Generator().manual_seed(1), 4)
    plain = data.images[order].float() / 127.5 - 1
    generated = order >= 4
    as_drawn, augmented = shown(False), shown(True)
    torch.testing.assert_close(as_drawn[generated], plain[generated])
    assert not torch.equal(augmented[generated], plain[generated])
    torch.testing.assert_close(as_drawn[~generated], augmented[~generated])


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


def test_an_epochs_order_uses_only_the_training_generator_and_just_the_draws_it_needs():
    """Every later draw of the run (augmentation, the next epochs) comes from the same generator,
    so the order must take exactly its permutations from it: nothing from the global state."""
    labels = torch.arange(10) % 4
    settings = TrainSettings(batch_size=4, steps_per_epoch=6)  # 24 indices: three permutations of 10
    rng, reference = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    order = epoch_order(labels, settings, rng, 4)
    expected = torch.cat([torch.randperm(10, generator=reference) for _ in range(3)])[:24]
    assert torch.equal(order, expected) and torch.equal(rng.get_state(), reference.get_state())
    imbalanced = torch.tensor([0] * 8 + [1, 2])
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        draws.append(epoch_order(imbalanced, TrainSettings(oversample=True), torch.Generator().manual_seed(0), 4))
    assert torch.equal(*draws)


def test_training_runs_under_autocast_when_set_and_counts_its_accuracy_per_image():
    data = synthetic_set(16, size=8)
    model = linear(seed=5)
    settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=8, dihedral=False)
    optimizer, scheduler = make_optimizer(model, settings, 2)
    stats = train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(0), CPU)
    assert stats["accuracy"] == pytest.approx(evaluate(model, data, CPU)["accuracy"])  # lr 0: the model as it is
    assert 0 < stats["accuracy"] < 1

    def weights(amp):
        model = linear(seed=5)
        settings = TrainSettings(lr=0.01, warmup_epochs=0, batch_size=8, amp=amp)
        optimizer, scheduler = make_optimizer(model, settings, 2)
        train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(0), CPU)
        return model[1].weight

    assert not torch.equal(weights(True), weights(False))
