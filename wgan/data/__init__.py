"""Data sets: the FIRST radio galaxy set from its wheel, or a user's own images.

`load_dataset(DataConfig(...))` returns an ImageSet: one uint8 tensor of centre-cropped (and
optionally area-downsampled) images with labels, RA/DEC and source catalogue per image.
Preprocessed arrays are cached on disk under a hash of the source files and every
preprocessing parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import cache
from .imageset import (
    CLASS_NAMES,
    GENERATED_SOURCE,
    DataError,
    ImageSet,
    generated_set,
    to_uint8,
    to_unit_range,
)
from .preprocess import FIRST_PIXEL_SCALE_ARCSEC, Preprocess, pixel_scale, preprocess_images
from .schema import RawImages
from .sources import (
    FOLDS,
    first_zip,
    first_zip_name,
    folder_digest,
    read_first_zip,
    read_folder,
    read_h5,
)

__all__ = [
    "generated_set",
    "CLASS_NAMES", "GENERATED_SOURCE", "DataConfig", "DataError", "ImageSet", "load_dataset", "to_uint8", "to_unit_range",
]

SPLITS = ("literature", "cv")
SUBSETS = ("train", "valid", "test", "all")


@dataclass
class DataConfig:
    """Which images to load and how to preprocess them."""

    source: str = "first"  # "first" (the bundled set), a class folder, or an .h5 file in the FIRST schema
    split: str = "literature"  # literature (1758/200/200) or cv (5 folds + shared 400-image test set)
    subset: str = "train"  # train | valid | test | all
    fold: int = 0  # cross-validation fold, with split="cv"
    crop: int | None = 128  # centre crop in source pixels; None: the whole image
    resolution: int | None = None  # area-downsample to this size; None: keep the crop size
    pixel_scale_arcsec: float = FIRST_PIXEL_SCALE_ARCSEC  # of the source images

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise DataError(f"unknown split '{self.split}'; expected one of {', '.join(SPLITS)}")
        if self.subset not in SUBSETS:
            raise DataError(f"unknown subset '{self.subset}'; expected one of {', '.join(SUBSETS)}")
        if not 0 <= self.fold < FOLDS:
            raise DataError(f"fold {self.fold} out of range 0..{FOLDS - 1}")
        if self.split == "cv" and self.subset == "all":
            raise DataError("subset 'all' is not defined for the cv split; load train, valid or test")


def load_dataset(config: DataConfig) -> ImageSet:
    """Load, preprocess (cached) and select the requested subset."""
    config.validate()
    prep = Preprocess(crop=config.crop, resolution=config.resolution)
    if config.source == "first":
        path = first_zip(first_zip_name(config.split, config.subset, config.fold))
        reader, digest = read_first_zip, cache.file_digest(path)
    else:
        path = Path(config.source)
        if path.is_dir():
            reader, digest = read_folder, folder_digest(path)
        elif path.is_file():
            reader, digest = read_h5, cache.file_digest(path)
        else:
            raise DataError(f"{path}: no such data folder or HDF5 file")
    key = cache.cache_key({"digest": digest, "crop": prep.crop, "resolution": prep.resolution,
                           "pixel_scale": config.pixel_scale_arcsec})
    arrays = cache.load(key)
    if arrays is None:
        raw = reader(path)
        prep.check(raw.images.shape[-1], str(path))
        arrays = _preprocessed_arrays(raw, prep, config.pixel_scale_arcsec)
        cache.save(key, arrays)  # only reached when the whole set read and validated
    full = ImageSet(
        images=torch.from_numpy(arrays["images"]),
        labels=torch.from_numpy(arrays["labels"]),
        ra=arrays["ra"],
        dec=arrays["dec"],
        source=arrays["source"],
        fingerprint=key,
        pixel_scale_arcsec=float(arrays["pixel_scale"]),
    )
    if config.subset == "all":
        return full
    selected = full.subset(arrays["split"] == config.subset, f"{config.split}/{config.fold}/{config.subset}")
    if len(selected) == 0:
        raise DataError(f"{path}: no images in subset '{config.subset}'")
    present = [CLASS_NAMES[c] for c in selected.labels.unique().tolist()]
    if config.subset == "train" and len(present) < 2:
        raise DataError(f"{path}: the training images hold only class {', '.join(present)}; class-conditional "
                        "training and classifiers need images of at least two classes")
    return selected


def _preprocessed_arrays(raw: RawImages, prep: Preprocess, source_scale: float) -> dict[str, np.ndarray]:
    size = raw.images.shape[-1]
    return {
        "images": preprocess_images(raw.images, prep),
        "labels": raw.labels,
        "split": raw.split,
        "ra": raw.ra,
        "dec": raw.dec,
        "source": raw.source,
        "pixel_scale": np.float64(pixel_scale(source_scale, size, prep)),
    }
