"""Preprocessing and the batch symmetry operations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wgan.data import (
    DataError,
    to_uint8,
    to_unit_range,
)
from wgan.data.preprocess import Preprocess, centre_crop, pixel_scale, preprocess_images
from wgan.data.symmetry import dihedral, random_dihedral, random_rotation

# ---------------------------------------------------------------------------------------------
# 2. Preprocessing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "height,size,top", [(10, 4, 3), (9, 4, 2), (10, 3, 3), (8, 8, 0), (300, 128, 86)]
)
def test_centre_crop_takes_the_central_window(height, size, top):
    images = np.arange(2 * height * height).reshape(2, height, height)
    out = centre_crop(images, size)
    assert out.shape == (2, size, size)
    assert np.array_equal(out, images[:, top : top + size, top : top + size])


@pytest.mark.parametrize(
    "source,crop,resolution", [(16, None, 4), (16, None, 8), (12, 8, 2), (20, 16, 4), (9, 6, 3)]
)
def test_area_downsampling_is_rounded_block_mean(source, crop, resolution):
    images = np.random.default_rng(source).integers(0, 256, (5, source, source), dtype=np.uint8)
    prep = Preprocess(crop=crop, resolution=resolution)
    out = preprocess_images(images, prep)
    window = centre_crop(images, crop or source).astype(np.float64)
    factor = window.shape[-1] // resolution
    blocks = window.reshape(5, resolution, factor, resolution, factor).mean(axis=(2, 4))
    assert out.dtype == np.uint8 and out.shape == (5, resolution, resolution)
    assert np.array_equal(out, np.round(blocks).astype(np.uint8))


@pytest.mark.parametrize("crop", [None, 8, 16])
def test_preprocess_without_resolution_only_crops(crop):
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    out = preprocess_images(images, Preprocess(crop=crop))
    assert np.array_equal(out, centre_crop(images, crop or 16))
    assert out.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "source,crop,resolution,message",
    [
        (100, 128, None, "smaller than the 128 px crop"),
        (16, 32, 8, "smaller than the 32 px crop"),
        (128, 128, 48, "must divide"),
        (128, 128, 256, "must divide"),
        (16, None, 5, "must divide"),
    ],
)
def test_preprocess_check_rejects(source, crop, resolution, message):
    with pytest.raises(DataError, match=message) as info:
        Preprocess(crop=crop, resolution=resolution).check(source, "some/file.h5")
    assert "some/file.h5" in str(info.value)


@pytest.mark.parametrize(
    "source,crop,resolution",
    [(300, 128, None), (300, 128, 32), (16, None, 16), (16, None, 1), (12, 8, 4)],
)
def test_preprocess_check_accepts(source, crop, resolution):
    """A size the check accepts is one that preprocessing turns into images of the promised size."""
    prep = Preprocess(crop=crop, resolution=resolution)
    prep.check(source, "x")
    out = preprocess_images(np.zeros((2, source, source), dtype=np.uint8), prep)
    assert out.shape == (2, prep.output_size(source), prep.output_size(source)) == (2, resolution or crop or source,
                                                                                      resolution or crop or source)


@pytest.mark.parametrize(
    "source,crop,resolution,expected",
    [(300, 128, None, 1.8), (300, 128, 32, 7.2), (300, 128, 64, 3.6), (16, None, 4, 7.2)],
)
def test_pixel_scale(source, crop, resolution, expected):
    assert pixel_scale(1.8, source, Preprocess(crop=crop, resolution=resolution)) == pytest.approx(
        expected
    )


def test_unit_range_round_trip_all_levels():
    levels = torch.arange(256, dtype=torch.uint8)
    unit = to_unit_range(levels)
    assert unit.dtype == torch.float32
    assert unit[0].item() == -1.0 and unit[-1].item() == 1.0
    assert bool((unit[1:] > unit[:-1]).all())
    assert torch.equal(to_uint8(unit), levels)


def test_to_uint8_clamps_and_rounds():
    values = torch.tensor([-5.0, -1.0, 1.0, 7.0, -1.0 + 0.6 / 127.5, -1.0 + 0.4 / 127.5])
    assert to_uint8(values).tolist() == [0, 0, 255, 255, 1, 0]



# ---------------------------------------------------------------------------------------------
# 6. Batch symmetry operations
# ---------------------------------------------------------------------------------------------

ASYMMETRIC = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)


def test_dihedral_gives_eight_distinct_images():
    images = [dihedral(ASYMMETRIC, element) for element in range(8)]
    assert torch.equal(images[0], ASYMMETRIC)
    assert all(image.shape == ASYMMETRIC.shape for image in images)
    assert len({tuple(image.flatten().tolist()) for image in images}) == 8


@pytest.mark.parametrize("element", range(8))
def test_dihedral_group_inverse_and_closure(element):
    once = dihedral(ASYMMETRIC, element)
    inverses = [b for b in range(8) if torch.equal(dihedral(once, b), ASYMMETRIC)]
    assert len(inverses) == 1
    assert torch.equal(
        dihedral(dihedral(ASYMMETRIC, inverses[0]), element), ASYMMETRIC
    )  # two-sided
    group = {tuple(dihedral(ASYMMETRIC, e).flatten().tolist()) for e in range(8)}
    for other in range(8):
        assert tuple(dihedral(once, other).flatten().tolist()) in group


def test_dihedral_acts_on_last_two_dims_of_a_batch():
    batch = torch.randn(3, 2, 5, 5)
    for element in range(8):
        out = dihedral(batch, element)
        for i in range(3):
            assert torch.equal(out[i : i + 1], dihedral(batch[i : i + 1], element))


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_random_dihedral_is_seeded_and_per_image():
    images = torch.randn(64, 1, 6, 6)
    out = random_dihedral(images, _generator(3))
    assert torch.equal(out, random_dihedral(images, _generator(3)))
    assert not torch.equal(out, random_dihedral(images, _generator(4)))
    elements = []
    for i in range(len(images)):
        matches = [e for e in range(8) if torch.equal(out[i], dihedral(images[i : i + 1], e)[0])]
        assert len(matches) == 1
        elements.append(matches[0])
    assert len(set(elements)) > 1  # an independent element per image, not one for the batch


def test_random_dihedral_preserves_pixel_multiset():
    images = torch.randint(0, 5, (32, 3, 7, 7)).float()
    out = random_dihedral(images, _generator(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert torch.equal(out.flatten(1).sort(1).values, images.flatten(1).sort(1).values)
    assert not torch.equal(out, images)


@pytest.mark.parametrize("shape", [(4, 1, 16, 16), (2, 3, 8, 8), (1, 1, 32, 32)])
def test_random_rotation_keeps_shape_and_floor(shape):
    floor = torch.full(shape, -1.0)
    out = random_rotation(floor, _generator(0))
    assert out.shape == floor.shape and out.dtype == floor.dtype
    assert torch.allclose(out, floor, atol=1e-6, rtol=0)


def test_random_rotation_fills_corners_with_floor_and_is_seeded():
    images = torch.ones(16, 1, 16, 16)
    out = random_rotation(images, _generator(1))
    assert torch.equal(out, random_rotation(images, _generator(1)))
    assert not torch.equal(out, random_rotation(images, _generator(2)))
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    # centres stay bright; corners, which rotate in from outside the image, take the floor
    assert torch.allclose(out[:, :, 6:10, 6:10], torch.ones(1), atol=1e-5)
    corners = out[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 0).float().mean() > 0.5


def test_random_rotation_preserves_mass_of_a_central_blob():
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = torch.exp(-((x - 15.5) ** 2 + (y - 15.5) ** 2) / 8.0)
    images = (blob * 2 - 1).expand(8, 1, 32, 32).contiguous()
    out = random_rotation(images, _generator(5))
    assert math.isclose(float((out + 1).sum()), float((images + 1).sum()), rel_tol=1e-2)
    assert torch.allclose(out, images, atol=0.15)  # a round blob looks the same at any angle
    # (up to the blur of bilinear resampling, < 0.09 of the 2.0 range here)
