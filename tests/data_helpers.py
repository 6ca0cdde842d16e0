"""Helpers shared by the data tests: small synthetic class folders and FIRST facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from wgan.data import (
    CLASS_NAMES,
)

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


