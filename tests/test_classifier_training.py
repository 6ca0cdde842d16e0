"""The classifier's training loop in small pieces, with tiny linear models on 8 px images so every
case runs in a fraction of a second: the loss and its class weights against their formulas, the
epoch's order, the optimizers, and what one epoch does and reports. Fast enough to run for every
mutant of classifier/engine.py (docs/mutation.md); tests/test_classifier_fit.py covers `fit` and
evaluation, tests/test_classifier.py trains the real models."""

import math

import pytest
import torch
import torch.nn.functional as F

from classifier.engine import (
    TrainSettings,
    _loss,
    class_weights,
    epoch_order,
    evaluate,
    make_optimizer,
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


class Recorder(Constant):
    """Uniform logits, and a copy of every batch it is shown (`seen`)."""

    def __init__(self):
        super().__init__([0.0, 0.0, 0.0, 0.0])
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return super().forward(x)


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
    drawn = []

    def fresh(labels):
        drawn.append(labels.clone())
        return torch.full((len(labels), 8, 8), 255, dtype=torch.uint8)

    model = Recorder()
    settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=4, dihedral=False)
    optimizer, scheduler = make_optimizer(model, settings, 2)
    train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(0), CPU, fresh=fresh)
    order = epoch_order(data.labels, settings, torch.Generator().manual_seed(0), 4)
    shown = torch.cat(model.seen)[:, 0]
    generated = order >= 4
    assert (shown[generated] == 1).all()  # the fresh images, at full brightness
    torch.testing.assert_close(shown[~generated], data.images[order[~generated]].float() / 127.5 - 1)
    assert torch.equal(torch.cat(drawn), data.labels[order[generated]])  # of the classes they replace
    assert (data.images[4:] == 0).all()  # the set itself untouched


def test_generated_images_enter_as_drawn_when_asked_while_real_ones_are_augmented():
    data = synthetic_set(8, size=8)
    data.source[4:] = GENERATED_SOURCE

    def shown(augment_generated):
        model = Recorder()
        settings = TrainSettings(lr=0.0, warmup_epochs=0, batch_size=8, augment_generated=augment_generated)
        optimizer, scheduler = make_optimizer(model, settings, 1)
        train_one_epoch(model, data, optimizer, scheduler, settings, torch.Generator().manual_seed(1), CPU)
        return torch.cat(model.seen)[:, 0]

    order = epoch_order(data.labels, TrainSettings(batch_size=8), torch.Generator().manual_seed(1), 4)
    plain = data.images[order].float() / 127.5 - 1
    generated = order >= 4
    as_drawn, augmented = shown(False), shown(True)
    torch.testing.assert_close(as_drawn[generated], plain[generated])
    assert not torch.equal(augmented[generated], plain[generated])
    torch.testing.assert_close(as_drawn[~generated], augmented[~generated])


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
