"""User data: class folders and HDF5 files in the FIRST schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.data_helpers import (
    COUNTS,
    make_folder,
    npz_files,
    sample_image,
    write_fits,
    write_png,
)
from wgan.data import (
    DataConfig,
    DataError,
    load_dataset,
)
from wgan.data.preprocess import Preprocess, centre_crop, preprocess_images
from wgan.data.schema import write_group

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


def _one_class_left(root):
    for name in ("FRII", "Compact", "Bent"):
        shutil.rmtree(root / name)
    return root


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
    "one-class": (_one_class_left, "at least two classes"),
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


def test_folder_classes_are_its_subfolders_first_names_in_first_order(tmp_path, cache_dir):
    """A survey's own classes: FIRST's names keep FIRST's label order, other names follow alphabetically."""
    root = tmp_path / "data"
    make_folder(root)
    shutil.rmtree(root / "Compact")
    (root / "Spiral").mkdir()
    write_png(root / "Spiral" / "s.png", sample_image(5, 16))
    data = load_dataset(DataConfig(source=str(root), crop=None))
    assert data.class_names == ("FRI", "FRII", "Bent", "Spiral")
    assert data.class_counts() == {"FRI": 2, "FRII": 3, "Bent": 2, "Spiral": 1}
    assert data.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 3]
