"""Data sets: the FIRST radio galaxy set from its wheel, or a user's own images.

`load_dataset(DataConfig(...))` returns an ImageSet: one uint8 tensor of centre-cropped (and
optionally area-downsampled) images with labels, RA/DEC and source catalogue per image.
Preprocessed arrays are cached on disk under a hash of the source files and every
preprocessing parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import cache, splits
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
    "CLASS_NAMES", "GENERATED_SOURCE", "DataConfig", "DataError", "ImageSet", "class_names", "load_dataset", "record_splits", "resolve_splits",
    "write_splits",
    "to_uint8", "to_unit_range",
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
    # A user's own data (not FIRST) under split="cv": the split file (wgan.data.splits) that says
    # which images are the test set and which fold each other image belongs to. None: the default
    # file of that data's content, drawn on first use; `resolve_splits` names it.
    splits: str | None = None

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise DataError(f"unknown split '{self.split}'; expected one of {', '.join(SPLITS)}")
        if self.subset not in SUBSETS:
            raise DataError(f"unknown subset '{self.subset}'; expected one of {', '.join(SUBSETS)}")
        if self.fold < 0 or (self.source == "first" and self.fold >= FOLDS):
            raise DataError(f"fold {self.fold} out of range 0..{FOLDS - 1}")
        if self.splits is not None and (self.source == "first" or self.split != "cv"):
            raise DataError("a split file applies to your own data (--data) with --split cv; "
                            "FIRST keeps its published folds")
        if self.split == "cv" and self.subset == "all":
            raise DataError("subset 'all' is not defined for the cv split; load train, valid or test")


def load_dataset(config: DataConfig) -> ImageSet:
    """Load, preprocess (cached) and select the requested subset."""
    config.validate()
    path, reader, digest = _source(config)
    arrays = _arrays(config, path, reader, digest)
    class_names = tuple(arrays["class_names"].tolist())
    full = ImageSet(
        images=torch.from_numpy(arrays["images"]),
        labels=torch.from_numpy(arrays["labels"]),
        ra=arrays["ra"],
        dec=arrays["dec"],
        source=arrays["source"],
        fingerprint=arrays["key"].item(),
        pixel_scale_arcsec=float(arrays["pixel_scale"]),
        class_names=class_names,
    )
    if config.subset == "all":
        return full
    if config.source != "first" and config.split == "cv":
        split_path = _split_file(config, digest, arrays)
        split = splits.load(split_path)
        if split.get("class_names", list(class_names)) != list(class_names):
            raise DataError(f"{split_path}: written for classes {split['class_names']}, the data has {list(class_names)}")
        places = splits.assign(split, arrays["hashes"], split_path)
        mask = splits.subset_mask(places, config.subset, config.fold, split["folds"])
        tag = f"cv:{cache.file_digest(split_path)[:12]}/{config.fold}/{config.subset}"
    else:
        mask, tag = arrays["split"] == config.subset, f"{config.split}/{config.fold}/{config.subset}"
    selected = full.subset(mask, tag)
    if len(selected) == 0:
        raise DataError(f"{path}: no images in subset '{config.subset}'")
    present = [class_names[c] for c in selected.labels.unique().tolist()]
    if config.subset == "train" and len(present) < 2:
        raise DataError(f"{path}: the training images hold only class {', '.join(present)}; class-conditional "
                        "training and classifiers need images of at least two classes")
    return selected


def resolve_splits(config: DataConfig) -> DataConfig:
    """`config` with the split file it uses named (drawn and written on first use) and, for a
    user's data, absolute paths, so that what a run records says exactly which images it trained
    on from any working directory; unchanged for FIRST."""
    if config.source == "first":
        return config
    config = replace(config, source=str(Path(config.source).resolve()))
    if config.split != "cv":
        return config
    if config.splits is not None:
        return replace(config, splits=str(Path(config.splits).resolve()))
    path, reader, digest = _source(config)
    return replace(config, splits=str(_split_file(config, digest, _arrays(config, path, reader, digest))))


def class_names(config: DataConfig) -> tuple[str, ...]:
    """The classes of the configured data, in label order (FIRST's four, or a user's own)."""
    if config.source == "first":
        return CLASS_NAMES
    path, reader, digest = _source(config)
    return tuple(_arrays(config, path, reader, digest)["class_names"].tolist())


def write_splits(config: DataConfig, plan: splits.SplitPlan, path: Path) -> dict:
    """Draw a split file of the configured (own) data with `plan` into `path`, which must not exist."""
    if config.source == "first":
        raise DataError("FIRST keeps its published folds; a split file is for your own data")
    if path.exists():
        raise DataError(f"{path} exists; choose a new file (nothing is overwritten)")
    source, reader, digest = _source(config)
    arrays = _arrays(config, source, reader, digest)
    split = splits.draw(arrays["hashes"], arrays["labels"], tuple(arrays["class_names"].tolist()), plan)
    from ..atomic import write_text

    write_text(path, json.dumps(split, indent=1))
    return split


def record_splits(config: DataConfig, folder: Path) -> None:
    """Copy the split file a run uses into its folder as splits.json (nothing for FIRST's folds)."""
    if config.splits:
        from ..atomic import write_text

        write_text(folder / "splits.json", Path(config.splits).read_text())


def _source(config: DataConfig):
    """(path, reader, content digest) of the configured source."""
    if config.source == "first":
        path = first_zip(first_zip_name(config.split, config.subset, config.fold))
        return path, read_first_zip, cache.file_digest(path)
    path = Path(config.source)
    if path.is_dir():
        return path, read_folder, folder_digest(path)
    if path.is_file():
        return path, read_h5, cache.file_digest(path)
    raise DataError(f"{path}: no such data folder or HDF5 file")


def _arrays(config: DataConfig, path: Path, reader, digest: str) -> dict[str, np.ndarray]:
    prep = Preprocess(crop=config.crop, resolution=config.resolution)
    key = cache.cache_key({"digest": digest, "crop": prep.crop, "resolution": prep.resolution,
                           "pixel_scale": config.pixel_scale_arcsec})
    arrays = cache.load(key)
    # An entry without class names and hashes predates them and is rebuilt; the key stays the same
    # so that fingerprints recorded in training states and reports remain valid.
    if arrays is None or not {"class_names", "hashes"} <= arrays.keys():
        raw = reader(path)
        prep.check(raw.images.shape[-1], str(path))
        arrays = _preprocessed_arrays(raw, prep, config.pixel_scale_arcsec)
        cache.save(key, arrays)  # only reached when the whole set read and validated
    return {**arrays, "key": np.asarray(key)}


def _split_file(config: DataConfig, digest: str, arrays: dict[str, np.ndarray]) -> Path:
    """The split file `config` uses: the one it names, or the default one of this data content.
    Only the default one is drawn, on first use and again after the cache was cleared (the draw is
    a function of the images and the plan, so a redrawn file is the same file)."""
    plan = splits.SplitPlan(folds=FOLDS)
    default = splits.default_path(cache.cache_dir(), digest, plan)
    path = Path(config.splits) if config.splits else default
    if path == default:
        splits.ensure(path, arrays["hashes"], arrays["labels"], tuple(arrays["class_names"].tolist()), plan)
    return path


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
        "class_names": np.asarray(raw.class_names),
        "hashes": np.asarray([splits.image_hash(image) for image in raw.images]),  # of the images as read
    }
