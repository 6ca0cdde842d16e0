"""The D4-equivariant CNN: every layer commutes with the 8 rotations/flips, the class scores are
invariant, and it trains through the ordinary classifier engine."""

import math

import pytest
import torch

from classifier.equivariant import (
    INVERSE,
    ORDER,
    PRODUCT,
    GroupConv,
    LiftingConv,
    act_on_maps,
    transform,
)
from classifier.features import penultimate_layer
from classifier.models import build_model


def test_the_group_table_is_a_group():
    assert all(PRODUCT[0][g] == g == PRODUCT[g][0] for g in range(ORDER))
    assert all(PRODUCT[g][INVERSE[g]] == 0 for g in range(ORDER))
    pattern = torch.randn(5, 5)
    for a in range(ORDER):
        for b in range(ORDER):
            assert torch.equal(transform(transform(pattern, b), a), transform(pattern, PRODUCT[a][b]))
    assert sorted(PRODUCT[3]) == list(range(ORDER))  # each row a permutation


@pytest.mark.parametrize("h", range(ORDER))
def test_layers_commute_with_every_rotation_and_flip(h):
    torch.manual_seed(h)
    x, maps = torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.randn(2, 3, ORDER, 16, 16, dtype=torch.float64)
    lift, group = LiftingConv(1, 3, 5).double(), GroupConv(3, 4, 3).double()
    assert torch.allclose(lift(transform(x, h)), act_on_maps(lift(x), h), atol=1e-12)
    assert torch.allclose(group(act_on_maps(maps, h)), act_on_maps(group(maps), h), atol=1e-12)


@pytest.mark.parametrize("h", range(1, ORDER))
def test_the_network_is_equivariant_and_its_scores_invariant(h):
    model = build_model("d4cnn", 32, seed=0).double().eval()
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    assert torch.allclose(model.feature_maps(transform(x, h)), act_on_maps(model.feature_maps(x), h), atol=1e-10)
    assert torch.allclose(model(transform(x, h)), model(x), atol=1e-10)
    # not trivially: the maps themselves change under the transform
    assert not torch.allclose(model.feature_maps(transform(x, h)), model.feature_maps(x), atol=1e-3)


def test_float32_scores_are_invariant_to_float_tolerance():
    model = build_model("d4cnn", 64, seed=1).eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        scores = torch.stack([model(transform(x, h)) for h in range(ORDER)])
    assert (scores - scores[0]).abs().max() < 1e-4


def test_it_fits_the_classifier_plumbing():
    model = build_model("d4cnn", 64, seed=0)
    assert isinstance(penultimate_layer(model), torch.nn.Linear)
    loss = model(torch.rand(4, 1, 64, 64)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="divisible by 16"):
        build_model("d4cnn", 40)


@pytest.mark.parametrize("name, views", [("d4cnn", 1), ("cnn", 8)])
def test_test_time_augmentation_skips_only_the_views_an_invariant_model_cannot_tell_apart(name, views):
    from classifier.engine import predict, probabilities
    from wgan.data.imageset import to_unit_range

    model = build_model(name, 32, seed=0).eval()
    images = torch.randint(0, 256, (5, 32, 32), dtype=torch.uint8)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    averaged = predict(model, images, torch.device("cpu"), tta=True)
    assert len(calls) == views  # one batch, so one forward pass per view
    x = to_unit_range(images).unsqueeze(1)
    with torch.no_grad():  # the mean over all 8 views, computed here the long way
        every_view = torch.stack([probabilities(model(transform(x, g))) for g in range(ORDER)]).mean(0)
    assert torch.allclose(averaged, every_view, atol=1e-5)


def lobes(n: int, two: bool, generator: torch.Generator) -> torch.Tensor:
    """[n, 1, 32, 32] images of one compact blob, or of two lobes either side of the centre along
    a random direction (a toy compact source against a double-lobed one), peak 1."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    angle = torch.rand(n, generator=generator) * 2 * math.pi
    offset = 7.0 if two else 0.0
    images = torch.zeros(n, 1, 32, 32)
    for sign in (1, -1):
        cy, cx = 15.5 + sign * offset * torch.sin(angle), 15.5 + sign * offset * torch.cos(angle)
        images[:, 0] += torch.exp(-((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2) / 8)
    return images / images.amax(dim=(1, 2, 3), keepdim=True) * 2 - 1


def test_it_learns_to_tell_a_compact_source_from_a_double_lobed_one():
    """At the recipe's learning rate, in a few dozen steps: gradients reach every layer through
    the invariant head. (Whether a head learns FIRST's classes fast enough is a question for the
    real data: the earlier head learns this toy too, yet stayed at chance on FIRST.)"""
    generator = torch.Generator().manual_seed(0)
    model = build_model("d4cnn", 32, num_classes=2, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    labels = torch.arange(32).ge(16).long()  # 16 compact sources, then 16 double-lobed ones
    for _ in range(60):
        images = torch.cat([lobes(16, False, generator), lobes(16, True, generator)])
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        held_out = torch.cat([lobes(50, False, generator), lobes(50, True, generator)])
        accuracy = (model(held_out).argmax(1) == torch.arange(100).ge(50).long()).float().mean()
    assert accuracy >= 0.95
