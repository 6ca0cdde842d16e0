"""Tests of wgan.data: FIRST counts and splits, preprocessing, the cache, user folders and
HDF5 files, and the batch symmetry operations.

FIRST-based tests share one cache directory for the whole session (`first_cache_dir`), so
each bundled zip is read at most once per session per preprocessing; they load at
resolution 32 (crop 128 -> 32 px), which is cheap to cache and to reload.
"""

from __future__ import annotations

import collections
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import wgan.data
from wgan.data import (
    CLASS_NAMES,
    DataConfig,
    DataError,
    cache,
    load_dataset,
    to_uint8,
    to_unit_range,
)
from wgan.data.preprocess import Preprocess, centre_crop, pixel_scale, preprocess_images
from wgan.data.schema import write_group
from wgan.data.sources import FOLDS
from wgan.data.symmetry import dihedral, random_dihedral, random_rotation

# ---------------------------------------------------------------------------------------------
# Shared helpers and fixtures
# ---------------------------------------------------------------------------------------------

FIRST_CATALOGUES = {  # subset "all" of the literature split, as the wheel ships it
    "Gendre": 810,
    "MiraBest": 745,
    "Proctor_Tab1": 281,  # the files name the Proctor catalogue "Proctor_Tab1"
    "Capetti2017a": 165,
    "Baldi2018": 108,
    "Capetti2017b": 49,
}
CV_TRAIN_VALID = 1758  # images of every cv fold's train + valid
CV_TEST = 400


def npz_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.npz")} if folder.exists() else set()


def coords(data) -> list[tuple[float, float]]:
    """Per-image (ra, dec) rounded to 3 decimals: the identity of a FIRST source."""
    return list(zip(np.round(data.ra, 3).tolist(), np.round(data.dec, 3).tolist(), strict=True))


@pytest.fixture(scope="session")
def first_cache_dir(session_cache) -> Path:
    """One cache directory for every FIRST load of the session (shared with the other tests)."""
    return session_cache


@pytest.fixture(scope="session")
def first_reads() -> collections.Counter:
    """How often each (zip, crop, resolution) was read from the wheel this session."""
    return collections.Counter()


@pytest.fixture
def first(first_cache_dir, first_reads, monkeypatch):
    """Load FIRST subsets through the session cache; fails if a zip is read twice for one
    preprocessing (the cache would then not be doing its job)."""
    monkeypatch.setenv("RADIOGAN_CACHE", str(first_cache_dir))
    real_reader = wgan.data.read_first_zip

    def load(crop: int | None = 128, resolution: int | None = 32, **kwargs):
        def counting_reader(path):
            first_reads[(Path(path).name, crop, resolution)] += 1
            return real_reader(path)

        with monkeypatch.context() as patch:
            patch.setattr(wgan.data, "read_first_zip", counting_reader)
            data = load_dataset(DataConfig(crop=crop, resolution=resolution, **kwargs))
        assert max(first_reads.values(), default=0) <= 1, first_reads
        return data

    return load


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache directory for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RADIOGAN_CACHE", str(folder))
    return folder


def sample_image(seed: int, size: int) -> np.ndarray:
    """A deterministic uint8 image holding both 0 and 255 (so min-max scaling is the identity)."""
    image = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    image.flat[0], image.flat[1] = 0, 255
    return image


def write_png(path: Path, image: np.ndarray, mode: str = "L") -> None:
    Image.fromarray(image, mode=mode).save(path)


def write_fits(path: Path, data: np.ndarray) -> None:
    from astropy.io import fits

    fits.PrimaryHDU(np.asarray(data)).writeto(path)


COUNTS = {"FRI": 2, "FRII": 3, "Compact": 1, "Bent": 2}


def make_folder(root: Path, fmt: str = "png", size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Class folders FRI/FRII/Compact/Bent of small images; returns the expected (images,
    labels) in the order the reader yields them (class order, then sorted file name)."""
    images, labels = [], []
    seed = 0
    for label, name in enumerate(CLASS_NAMES):
        (root / name).mkdir(parents=True)
        for i in range(COUNTS[name]):
            image = sample_image(seed, size)
            seed += 1
            kind = fmt if fmt != "mixed" else ("png", "fits", "fits.gz", "fits3d")[seed % 4]
            stem = root / name / f"{name}_{i:02d}"
            if kind == "png":
                write_png(stem.with_suffix(".png"), image)
            elif kind == "fits":  # float pixels in an arbitrary flux unit
                write_fits(stem.with_suffix(".fits"), image.astype(np.float32) * 0.01 - 0.5)
            elif kind == "fits.gz":
                write_fits(Path(f"{stem}.fits.gz"), image.astype(np.float64) * 3.0)
            else:  # a degenerate leading axis, as radio FITS cubes often have
                write_fits(stem.with_suffix(".fits"), image[None].astype(np.float32))
            images.append(image)
            labels.append(label)
    return np.stack(images), np.asarray(labels)


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
    Preprocess(crop=crop, resolution=resolution).check(source, "x")


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
# 3. The cache
# ---------------------------------------------------------------------------------------------


def counting(monkeypatch, name: str) -> list:
    """Replace reader `wgan.data.<name>` by a wrapper that records each call."""
    calls = []
    real = getattr(wgan.data, name)

    def reader(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(wgan.data, name, reader)
    return calls


def refuse(monkeypatch, name: str) -> None:
    def reader(path):
        raise AssertionError(f"{name}({path}) called: the cache was not used")

    monkeypatch.setattr(wgan.data, name, reader)


def test_first_second_load_is_served_from_cache(first, first_cache_dir, monkeypatch):
    before = first(split="cv", subset="test")
    assert (first_cache_dir / f"{before.fingerprint.split(':')[0]}.npz").is_file()
    refuse(monkeypatch, "read_first_zip")
    again = load_dataset(DataConfig(split="cv", subset="test", resolution=32))
    assert torch.equal(again.images, before.images) and torch.equal(again.labels, before.labels)
    assert np.array_equal(again.ra, before.ra) and np.array_equal(again.source, before.source)
    assert again.fingerprint == before.fingerprint


def test_folder_second_load_is_served_from_cache(tmp_path, cache_dir, monkeypatch):
    make_folder(tmp_path / "data")
    calls = counting(monkeypatch, "read_folder")
    first_load = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(calls) == 1 and len(npz_files(cache_dir)) == 1
    second = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(calls) == 1
    assert torch.equal(first_load.images, second.images)
    assert first_load.fingerprint == second.fingerprint


def test_cache_key_changes_with_crop_resolution_and_digest(tmp_path, cache_dir):
    root = tmp_path / "data"
    make_folder(root, size=16)

    def key(**kwargs) -> str:
        return load_dataset(DataConfig(source=str(root), subset="all", **kwargs)).fingerprint

    keys = {
        "whole": key(crop=None),
        "crop16": key(crop=16),  # same pixels as crop=None, but a different parameter
        "crop8": key(crop=8),
        "res8": key(crop=None, resolution=8),
        "crop8-res4": key(crop=8, resolution=4),
    }
    assert key(crop=None) == keys["whole"]
    write_png(root / "FRI" / "FRI_00.png", sample_image(99, 16))  # same name, new bytes
    keys["edited"] = key(crop=None)
    (root / "FRI" / "FRI_00.png").rename(root / "FRI" / "FRI_zz.png")  # same bytes, new name
    keys["renamed"] = key(crop=None)
    assert len(set(keys.values())) == len(keys), keys
    assert npz_files(cache_dir) == {f"{k}.npz" for k in keys.values()}


def test_first_cache_key_differs_between_zips(first):
    keys = {
        first(split="cv", subset="test").fingerprint.split(":")[0],
        first(subset="test").fingerprint.split(":")[0],
        first(split="cv", subset="test", resolution=None).fingerprint.split(":")[0],
    }
    assert len(keys) == 3


@pytest.mark.parametrize(
    "parts,other",
    [
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "b", "crop": 128, "resolution": 32},
        ),
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "a", "crop": 64, "resolution": 32},
        ),
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "a", "crop": 128, "resolution": 64},
        ),
        (
            {"digest": "a", "crop": None, "resolution": None},
            {"digest": "a", "crop": 128, "resolution": None},
        ),
    ],
)
def test_cache_key_function(parts, other):
    assert cache.cache_key(parts) == cache.cache_key(dict(reversed(list(parts.items()))))
    assert cache.cache_key(parts) != cache.cache_key(other)


CORRUPTIONS = {
    "garbage": lambda data: b"this is not an npz file" * 10,
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "zeroed-tail": lambda data: data[: len(data) // 2] + bytes(len(data) - len(data) // 2),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_cache_file_is_rebuilt(tmp_path, cache_dir, monkeypatch, corruption):
    make_folder(tmp_path / "data")
    config = DataConfig(source=str(tmp_path / "data"), crop=None)
    good = load_dataset(config)
    path = cache_dir / f"{good.fingerprint.split(':')[0]}.npz"
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    calls = counting(monkeypatch, "read_folder")
    rebuilt = load_dataset(config)
    assert len(calls) == 1
    assert torch.equal(rebuilt.images, good.images) and torch.equal(rebuilt.labels, good.labels)
    assert cache.load(good.fingerprint.split(":")[0]) is not None  # the entry was rewritten
    load_dataset(config)
    assert len(calls) == 1


def test_cache_writes_leave_no_temporary_files(tmp_path, cache_dir):
    make_folder(tmp_path / "data")
    for crop in (None, 8):
        load_dataset(DataConfig(source=str(tmp_path / "data"), crop=crop))
    assert len(npz_files(cache_dir)) == 2
    assert sorted(p.name for p in cache_dir.iterdir() if not p.name.endswith(".npz")) == []


@pytest.mark.parametrize("error", [OSError, RuntimeError])
def test_failed_cache_write_leaves_nothing(tmp_path, cache_dir, monkeypatch, error):
    make_folder(tmp_path / "data")

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise error("disk full")

    monkeypatch.setattr(cache.np, "savez", broken_savez)
    config = DataConfig(source=str(tmp_path / "data"), crop=None)
    if error is OSError:  # a cache that cannot be written only costs speed
        assert len(load_dataset(config)) == sum(COUNTS.values())
    else:
        with pytest.raises(error):
            load_dataset(config)
    assert list(cache_dir.iterdir()) == []


def test_unwritable_cache_dir_still_loads(tmp_path, monkeypatch):
    make_folder(tmp_path / "data")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("RADIOGAN_CACHE", str(blocker))
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(data) == sum(COUNTS.values())


# ---------------------------------------------------------------------------------------------
# 4. User class folders
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "fits", "mixed"])
@pytest.mark.parametrize("size", [16, 32])
def test_folder_loads_with_labels_and_counts(tmp_path, cache_dir, fmt, size):
    root = tmp_path / "my-galaxies"
    images, labels = make_folder(root, fmt=fmt, size=size)
    data = load_dataset(DataConfig(source=str(root), crop=None))
    assert data.class_counts() == COUNTS
    assert data.labels.tolist() == labels.tolist()
    assert data.images.dtype == torch.uint8
    assert np.array_equal(data.images.numpy(), images)
    assert data.pixel_scale_arcsec == pytest.approx(1.8)
    assert np.isnan(data.ra).all() and np.isnan(data.dec).all()
    assert set(data.source.tolist()) == {"my-galaxies"}


def test_folder_with_crop_and_resolution(tmp_path, cache_dir):
    images, _ = make_folder(tmp_path / "data", size=32)
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=16, resolution=8))
    expected = centre_crop(images, 16).astype(np.float64).reshape(-1, 8, 2, 8, 2).mean(axis=(2, 4))
    assert np.array_equal(data.images.numpy(), np.round(expected).astype(np.uint8))
    assert data.pixel_scale_arcsec == pytest.approx(1.8 * 16 / 8)


def test_folder_grey_rgb_png_is_accepted(tmp_path, cache_dir):
    images, _ = make_folder(tmp_path / "data")
    path = tmp_path / "data" / "FRI" / "FRI_00.png"
    write_png(path, np.repeat(images[0][..., None], 3, axis=2), mode="RGB")
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert np.array_equal(data.images.numpy(), images)


def test_folder_ignores_hidden_and_other_files(tmp_path, cache_dir):
    images, _ = make_folder(tmp_path / "data")
    (tmp_path / "data" / "FRI" / "notes.txt").write_text("not an image")
    (tmp_path / "data" / "FRI" / ".hidden.png").write_bytes(b"garbage")
    (tmp_path / "data" / ".git").mkdir()
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert np.array_equal(data.images.numpy(), images)


def test_folder_subset_without_images_raises(tmp_path, cache_dir):
    make_folder(tmp_path / "data")
    with pytest.raises(DataError, match="no images in subset 'valid'"):
        load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None, subset="valid"))


def _garbage_png(root):
    path = root / "FRI" / "x.png"
    path.write_bytes(b"\x00\x01 definitely not a PNG \xff" * 20)
    return path


def _non_square(root):
    path = root / "FRII" / "FRII_00.png"
    write_png(path, np.zeros((16, 20), dtype=np.uint8))
    return path


def _other_size(root):
    path = root / "Bent" / "zz.png"  # last in reading order: the others set the size
    write_png(path, sample_image(7, 32))
    return path


def _fits_with(value):
    def damage(root):
        path = root / "Compact" / "bad.fits"
        data = sample_image(3, 16).astype(np.float32)
        data[5, 5] = value
        write_fits(path, data)
        return path

    return damage


def _garbage_fits(root):
    path = root / "FRII" / "broken.fits"
    path.write_bytes(b"SIMPLE  = nonsense" * 50)
    return path


def _empty_class(root):
    for path in (root / "Bent").iterdir():
        path.unlink()
    return root / "Bent"


def _missing_class(root):
    shutil.rmtree(root / "Compact")
    return root / "Compact"


def _unknown_class(root):
    (root / "Spiral").mkdir()
    write_png(root / "Spiral" / "s.png", sample_image(5, 16))
    return root / "Spiral"


def _colour_png(root):
    path = root / "FRI" / "FRI_01.png"
    rgb = np.stack([sample_image(1, 16), sample_image(2, 16), sample_image(3, 16)], axis=-1)
    write_png(path, rgb, mode="RGB")
    return path


BAD_INPUTS = {
    "unreadable-png": (_garbage_png, "unreadable PNG"),
    "unreadable-fits": (_garbage_fits, "unreadable FITS"),
    "non-square": (_non_square, "square"),
    "different-size": (_other_size, "the first image is"),
    "nan-fits": (_fits_with(np.nan), "NaN or infinite"),
    "inf-fits": (_fits_with(np.inf), "NaN or infinite"),
    "minus-inf-fits": (_fits_with(-np.inf), "NaN or infinite"),
    "empty-class": (_empty_class, "has no PNG or FITS images"),
    "missing-class": (_missing_class, "has no PNG or FITS images"),
    "unknown-class": (_unknown_class, "unknown class 'Spiral'"),
    "colour-png": (_colour_png, "colour image"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_folder_bad_input_raises_naming_it(tmp_path, cache_dir, case):
    damage, message = BAD_INPUTS[case]
    root = tmp_path / "data"
    make_folder(root)
    load_dataset(DataConfig(source=str(root), crop=None))  # the good folder is cached ...
    cached = npz_files(cache_dir)
    assert len(cached) == 1
    offender = damage(root)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(DataConfig(source=str(root), crop=None))
    assert str(offender) in str(info.value)
    assert npz_files(cache_dir) == cached  # ... and nothing new was written for the bad one
    assert all(p.suffix == ".npz" for p in cache_dir.iterdir())


def test_folder_crop_larger_than_images_raises(tmp_path, cache_dir):
    make_folder(tmp_path / "data", size=16)
    with pytest.raises(DataError, match="smaller than the 128 px crop") as info:
        load_dataset(DataConfig(source=str(tmp_path / "data")))  # default crop 128
    assert str(tmp_path / "data") in str(info.value)
    assert not npz_files(cache_dir)


# ---------------------------------------------------------------------------------------------
# 5. A user HDF5 file in the FIRST schema
# ---------------------------------------------------------------------------------------------


def write_schema_file(path: Path, count: int = 12, size: int = 16):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    labels = np.arange(count) % 4
    splits = np.array(["train", "valid", "test"])[np.arange(count) % 3]
    ra, dec = rng.uniform(0, 360, count), rng.uniform(-90, 90, count)
    sources = np.array(["Gendre", "MiraBest", "Mine"])[np.arange(count) // 2 % 3]
    with h5py.File(path, "w") as h5:
        for i in range(count):
            write_group(
                h5, i, images[i], int(labels[i]), str(sources[i]), ra[i], dec[i], str(splits[i])
            )
    return images, labels, splits, ra, dec, sources


@pytest.mark.parametrize("subset", ["all", "train", "valid", "test"])
def test_h5_round_trip(tmp_path, cache_dir, subset):
    path = tmp_path / "mine.h5"
    images, labels, splits, ra, dec, sources = write_schema_file(path)
    data = load_dataset(DataConfig(source=str(path), crop=None, subset=subset))
    keep = np.ones(len(labels), bool) if subset == "all" else splits == subset
    assert keep.sum() > 0
    assert np.array_equal(data.images.numpy(), images[keep])
    assert data.labels.tolist() == labels[keep].tolist()
    assert np.array_equal(data.ra, ra[keep]) and np.array_equal(data.dec, dec[keep])
    assert data.source.tolist() == sources[keep].tolist()
    assert data.pixel_scale_arcsec == pytest.approx(1.8)


def test_h5_group_order_is_numeric(tmp_path, cache_dir):
    path = tmp_path / "mine.h5"
    images, *_ = write_schema_file(path, count=12)  # data_10 sorts before data_2 as text
    data = load_dataset(DataConfig(source=str(path), crop=None, subset="all"))
    assert np.array_equal(data.images.numpy(), images)


def test_h5_with_crop_and_resolution(tmp_path, cache_dir):
    path = tmp_path / "mine.h5"
    images, *_ = write_schema_file(path, size=20)
    data = load_dataset(DataConfig(source=str(path), crop=16, resolution=4, subset="all"))
    assert np.array_equal(data.images.numpy(), preprocess_images(images, Preprocess(16, 4)))
    assert data.pixel_scale_arcsec == pytest.approx(7.2)


def _h5_bad_label(h5):
    write_group(h5, 0, np.zeros((8, 8), np.uint8), 7, "x")


def _h5_float_image(h5):
    group = h5.create_group("data_0")
    group.create_dataset("Img", data=np.zeros((8, 8), np.float32))
    group.create_dataset("Label_literature", data=1.0)


def _h5_no_groups(h5):
    h5.create_dataset("images", data=np.zeros((2, 8, 8), np.uint8))


def _h5_non_square(h5):
    write_group(h5, 0, np.zeros((8, 6), np.uint8), 0, "x")


@pytest.mark.parametrize(
    "build,message",
    [
        (_h5_bad_label, "unknown class label 7"),
        (_h5_float_image, "dtype is float32"),
        (_h5_no_groups, "not an HDF5 file in the FIRST schema"),
        (_h5_non_square, "square"),
        (None, "cannot read as HDF5"),
    ],
)
def test_h5_bad_input_raises_naming_it(tmp_path, cache_dir, build, message):
    path = tmp_path / "bad.h5"
    if build is None:
        path.write_bytes(b"not hdf5 at all" * 10)
    else:
        with h5py.File(path, "w") as h5:
            build(h5)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(DataConfig(source=str(path), crop=None, subset="all"))
    assert str(path) in str(info.value)
    assert not npz_files(cache_dir)


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
