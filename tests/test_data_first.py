"""The real FIRST data set: counts, splits, metadata."""

from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.data_helpers import (
    CV_TEST,
    CV_TRAIN_VALID,
    FIRST_CATALOGUES,
    coords,
    npz_files,
)
from wgan.data import (
    CLASS_NAMES,
    DataConfig,
    DataError,
    load_dataset,
)
from wgan.data.preprocess import Preprocess, preprocess_images
from wgan.data.sources import FOLDS

# ---------------------------------------------------------------------------------------------
# 1. The real FIRST data set
# ---------------------------------------------------------------------------------------------

FIRST_COUNTS = [
    pytest.param("literature", "train", 0, (395, 824, 291, 248), id="literature-train"),
    pytest.param("literature", "valid", 0, (50, 50, 50, 50), id="literature-valid"),
    pytest.param("literature", "test", 0, (50, 50, 50, 50), id="literature-test"),
    pytest.param("literature", "all", 0, (495, 924, 391, 348), id="literature-all"),
    *[
        pytest.param("cv", subset, fold, counts, id=f"cv{fold}-{subset}")
        for fold in range(4)
        for subset, counts in (("train", (316, 659, 232, 198)), ("valid", (79, 165, 59, 50)))
    ],
    # fold 4 as shipped in the wheel (it differs from the published table)
    pytest.param("cv", "train", 4, (316, 660, 236, 200), id="cv4-train"),
    pytest.param("cv", "valid", 4, (79, 164, 55, 48), id="cv4-valid"),
    *[
        pytest.param("cv", "test", fold, (100, 100, 100, 100), id=f"cv{fold}-test")
        for fold in range(FOLDS)
    ],
]


@pytest.mark.parametrize("split,subset,fold,expected", FIRST_COUNTS)
def test_first_class_counts(first, split, subset, fold, expected):
    data = first(split=split, subset=subset, fold=fold)
    counts = data.class_counts()
    assert list(counts) == ["FRI", "FRII", "Compact", "Bent"]
    assert tuple(counts.values()) == expected
    assert len(data) == sum(expected)
    assert data.images.dtype == torch.uint8
    assert tuple(data.images.shape) == (sum(expected), 32, 32)
    assert data.labels.dtype == torch.int64
    assert data.pixel_scale_arcsec == pytest.approx(7.2)


def test_first_literature_subsets_partition_all(first):
    parts = [coords(first(subset=subset)) for subset in ("train", "valid", "test")]
    every = coords(first(subset="all"))
    assert len(set(every)) == len(every) == 2158  # coordinates identify the sources uniquely
    assert sum(len(set(part)) for part in parts) == 2158
    assert set().union(*map(set, parts)) == set(every)


@pytest.mark.parametrize("fold", range(FOLDS))
def test_first_cv_fold_is_all_but_the_test_set(first, fold):
    train, valid = (
        first(split="cv", fold=fold, subset="train"),
        first(split="cv", fold=fold, subset="valid"),
    )
    test = set(coords(first(split="cv", subset="test")))
    every = first(subset="all")
    train_keys, valid_keys = coords(train), coords(valid)
    assert len(set(train_keys)) == len(train) and len(set(valid_keys)) == len(valid)
    assert not set(train_keys) & set(valid_keys)
    together = set(train_keys) | set(valid_keys)
    assert len(together) == CV_TRAIN_VALID
    assert not together & test
    assert together == set(coords(every)) - test  # all 2158 sources less the 400 cv test images
    # and each image is the same image, label and catalogue as in the literature file
    index = {key: i for i, key in enumerate(coords(every))}
    rows = torch.tensor([index[key] for key in train_keys + valid_keys])
    assert torch.equal(torch.cat([train.images, valid.images]), every.images[rows])
    assert torch.equal(torch.cat([train.labels, valid.labels]), every.labels[rows])
    assert np.array_equal(np.concatenate([train.source, valid.source]), every.source[rows.numpy()])


def test_first_cv_valid_folds_partition_train_valid(first):
    valids = [set(coords(first(split="cv", fold=fold, subset="valid"))) for fold in range(FOLDS)]
    assert sum(map(len, valids)) == CV_TRAIN_VALID
    assert len(set().union(*valids)) == CV_TRAIN_VALID


def test_first_cv_test_is_subset_of_all(first):
    test = coords(first(split="cv", subset="test"))
    assert len(set(test)) == CV_TEST
    assert set(test) <= set(coords(first(subset="all")))


@pytest.mark.parametrize(
    "split,subset,fold",
    [
        ("literature", "all", 0),
        ("cv", "test", 0),
        *[("cv", s, f) for f in range(FOLDS) for s in ("train", "valid")],
    ],
)
def test_first_coordinates_and_catalogues(first, split, subset, fold):
    data = first(split=split, subset=subset, fold=fold)
    assert np.isfinite(data.ra).all() and np.isfinite(data.dec).all()
    assert ((data.ra >= 0) & (data.ra < 360)).all() and (np.abs(data.dec) <= 90).all()
    assert set(data.source.tolist()) <= set(FIRST_CATALOGUES)


def test_first_catalogue_counts(first):
    data = first(subset="all")
    assert dict(collections.Counter(data.source.tolist())) == FIRST_CATALOGUES


@pytest.mark.parametrize("resolution,size,scale", [(None, 128, 1.8), (32, 32, 7.2)])
def test_first_images_and_pixel_scale(first, resolution, size, scale):
    data = first(split="cv", subset="test", resolution=resolution)
    assert data.images.dtype == torch.uint8
    assert tuple(data.images.shape) == (CV_TEST, size, size)
    assert data.resolution == size
    assert data.pixel_scale_arcsec == pytest.approx(scale)


def test_first_downsampled_images_are_block_means_of_the_crop(first):
    full = first(split="cv", subset="test", resolution=None)
    small = first(split="cv", subset="test", resolution=32)
    assert int(full.images.max()) == 255  # the 0..255 range of the FIRST files is kept
    expected = preprocess_images(full.images.numpy(), Preprocess(crop=None, resolution=32))
    assert np.array_equal(small.images.numpy(), expected)
    assert torch.equal(small.labels, full.labels) and np.array_equal(small.ra, full.ra)


def test_first_cv_test_has_one_blank_image(first):
    data = first(split="cv", subset="test", resolution=None)  # at full 128 px: truly blank
    blank = np.flatnonzero((data.images.flatten(1).amax(1) == 0).numpy())
    assert len(blank) == 1
    assert CLASS_NAMES[int(data.labels[blank[0]])] == "Bent"
    assert data.source[blank[0]].startswith("Proctor")


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"split": "kfold"}, "unknown split"),
        ({"subset": "training"}, "unknown subset"),
        ({"split": "cv", "fold": FOLDS}, "out of range"),
        ({"split": "cv", "fold": -1}, "out of range"),
        ({"split": "cv", "subset": "all"}, "not defined for the cv split"),
        ({"source": "/nonexistent/radiogan-data"}, "/nonexistent/radiogan-data"),
    ],
)
def test_bad_config_raises_data_error(cache_dir, overrides, message):
    with pytest.raises(DataError, match=message):
        load_dataset(DataConfig(**overrides))
    assert not npz_files(cache_dir)


def test_missing_first_wheel_is_a_data_error(cache_dir, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "firstgalaxydata" else real(name, *a))
    with pytest.raises(DataError, match="needs the firstgalaxydata package"):
        load_dataset(DataConfig(split="cv", subset="test"))
    assert not npz_files(cache_dir)


def test_loading_first_imports_neither_the_wheel_nor_torchvision(first_cache_dir):
    """A fresh process (each Dask worker, each command) finds the wheel's files without running
    its __init__, which imports torchvision and torch._dynamo: seconds before every first cell."""
    code = ("import sys; from wgan.data import DataConfig, load_dataset; "
            "print(len(load_dataset(DataConfig(split='cv', subset='test')))); "
            "print(sorted(m for m in ('firstgalaxydata', 'torchvision') if m in sys.modules))")
    env = {**os.environ, "RADIOGAN_CACHE": str(first_cache_dir)}
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert found.stdout.split("\n")[:2] == ["400", "[]"]
