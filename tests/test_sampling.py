import numpy as np
import pytest
import torch

from tests.helpers import synthetic_set, tiny_config
from wgan.sampling import generate, load_generator, plan
from wgan.training_loop import train


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return train(tiny_config(iters=4), synthetic_set(), run_dir, progress=False)


def draw(path, labels, seeds, batch_size):
    gen = load_generator(path)
    return torch.cat([images for images, _, _ in generate(gen.model, labels, seeds, batch_size)])


@pytest.mark.parametrize("n, classes, expected", [
    (100, [0, 1, 2, 3], [25, 25, 25, 25]),
    (10, [0, 1, 2, 3], [3, 3, 2, 2]),
    (5, [3], [0, 0, 0, 5]),
])
def test_plan_counts_and_seeds(n, classes, expected):
    labels, seeds = plan(n, classes, seed=7)
    assert torch.bincount(labels, minlength=4).tolist() == expected
    assert seeds.tolist() == list(range(7, 7 + n))


def test_sampling_is_deterministic_and_batch_size_independent(export):
    labels, seeds = plan(13, [0, 1, 2, 3], seed=3)
    reference = draw(export, labels, seeds, batch_size=13)
    for batch_size in (1, 4, 64):
        assert torch.allclose(draw(export, labels, seeds, batch_size), reference, atol=1e-5)
    assert not torch.allclose(draw(export, labels, seeds + 1, 13), reference)


def test_image_depends_on_its_own_seed_only(export):
    """Image with seed s is the same whether drawn alone or inside a larger request."""
    labels, seeds = plan(8, [2], seed=0)
    alone = draw(export, labels[5:6], seeds[5:6], 1)
    assert torch.allclose(alone, draw(export, labels, seeds, 8)[5:6], atol=1e-5)


def test_export_metadata(export):
    gen = load_generator(export)
    assert gen.class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert gen.resolution == 16 and len(gen.file_hash) == 16
    assert not gen.model.training
    images = draw(export, torch.tensor([0]), torch.tensor([0]), 1)
    assert images.shape == (1, 16, 16) and np.isfinite(images.numpy()).all()
