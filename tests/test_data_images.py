"""Images are read as images: every PNG mode a survey tool writes, and malformed HDF5, become the
right pixels or a one-line error naming the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.data_helpers import make_folder
from wgan.data import DataConfig, DataError, load_dataset
from wgan.data.schema import write_group
from wgan.data.sources import read_image_file


@pytest.fixture
def grey():
    return np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)


def save(img: Image.Image, tmp_path) -> object:
    path = tmp_path / "image.png"
    img.save(path)
    return path


def palette_image(pixels: np.ndarray, colours: np.ndarray) -> Image.Image:
    """A palette-mode PNG whose index i shows colour colours[i]; indices differ from the colours."""
    img = Image.fromarray(pixels, mode="P")
    img.putpalette(colours.astype(np.uint8).reshape(-1).tolist())
    return img


def test_grey_palette_png_is_read_through_its_palette(tmp_path, grey):
    indices = (255 - grey).astype(np.uint8)  # index i holds grey level 255 - i
    levels = 255 - np.arange(256)
    path = save(palette_image(indices, np.stack([levels] * 3, axis=1)), tmp_path)
    assert np.array_equal(read_image_file(path), grey)


def test_colour_palette_png_is_refused(tmp_path, grey):
    colours = np.stack([np.arange(256), np.zeros(256), np.arange(256)[::-1]], axis=1)
    path = save(palette_image(grey, colours), tmp_path)
    with pytest.raises(DataError, match=f"{path}: colour image"):
        read_image_file(path)


def test_grey_alpha_png_opaque_is_read_and_transparent_is_refused(tmp_path, grey):
    alpha = np.full_like(grey, 255)
    path = save(Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA"), tmp_path)
    assert np.array_equal(read_image_file(path), grey)
    alpha[3, 3] = 0
    path = save(Image.fromarray(np.stack([grey, alpha], axis=2), mode="LA"), tmp_path)
    with pytest.raises(DataError, match="transparent pixels"):
        read_image_file(path)


def test_16_bit_png_is_scaled_per_image(tmp_path):
    wide = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)
    path = tmp_path / "deep.png"
    Image.fromarray(wide).save(path)
    image = read_image_file(path)
    assert image.dtype == np.uint8 and image.min() == 0 and image.max() == 255
    assert np.array_equal(np.argsort(image, axis=None, kind="stable"), np.argsort(wide, axis=None, kind="stable"))


def test_1_bit_png_is_0_or_255(tmp_path, grey):
    path = save(Image.fromarray(grey > 127).convert("1"), tmp_path)
    assert set(np.unique(read_image_file(path)).tolist()) <= {0, 255}


def test_decompression_bomb_is_refused_by_name(tmp_path, grey, monkeypatch):
    path = save(Image.fromarray(grey), tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 256 pixels is over 2x this limit
    with pytest.raises(DataError, match=f"{path}: image too large to decode safely"):
        read_image_file(path)


def write_h5(path, labels, change=None):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        for i, label in enumerate(labels):
            write_group(h5, i, rng.integers(0, 256, (16, 16), dtype=np.uint8), label, "test")
        if change:
            change(h5)


def string_label(h5):
    del h5["data_1"]["Label_literature"]
    h5["data_1"].create_dataset("Label_literature", data=b"FRII")


def image_as_group(h5):
    del h5["data_2"]["Img"]
    h5["data_2"].create_group("Img")


@pytest.mark.parametrize("change, message", [
    (string_label, r"data_1: class label b'FRII' is not a number"),
    (image_as_group, r"data_2: (malformed group|missing)"),
])
def test_malformed_h5_is_a_one_line_error_naming_the_group(tmp_path, cache_dir, change, message):
    path = tmp_path / "set.h5"
    write_h5(path, [0, 1, 2, 3] * 3, change)
    with pytest.raises(DataError, match=message) as error:
        load_dataset(DataConfig(source=str(path), crop=None))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_training_set_of_one_class_is_refused(tmp_path, cache_dir):
    path = tmp_path / "bent-only.h5"
    write_h5(path, [3] * 8)
    with pytest.raises(DataError, match="only class Bent; .* at least two classes"):
        load_dataset(DataConfig(source=str(path), crop=None))


def test_palette_folder_trains_on_the_palette_colours(tmp_path, cache_dir):
    """End to end: a class folder whose FRI images are palette PNGs loads their grey levels."""
    images, _ = make_folder(tmp_path / "data")
    first = sorted((tmp_path / "data" / "FRI").glob("*.png"))[0]
    original = np.asarray(Image.open(first))
    levels = np.arange(256)[::-1]
    palette_image((255 - original).astype(np.uint8), np.stack([levels] * 3, axis=1)).save(first)
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert np.array_equal(data.images[0].numpy(), original)
