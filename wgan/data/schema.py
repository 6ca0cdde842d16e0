"""Read and write HDF5 files in the FIRST data set schema.

One group `data_<i>` per image holding dataset `Img` (uint8, square; attributes `RA`, `DEC`,
`Source`) and scalar datasets `Label_literature` and `Split_literature`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import h5py
import numpy as np

from .imageset import CLASS_NAMES, DataError


@dataclass
class RawImages:
    """Unpreprocessed images of one file, in the file's group order."""

    images: np.ndarray  # [N, S, S] uint8
    labels: np.ndarray  # [N] int64
    split: np.ndarray  # [N] str: train / valid / test
    ra: np.ndarray  # [N] float64
    dec: np.ndarray  # [N] float64
    source: np.ndarray  # [N] str
    class_names: tuple[str, ...] = CLASS_NAMES  # label i is class_names[i]


def _group_order(name: str) -> tuple[int, str]:
    match = re.fullmatch(r"data_(\d+)", name)
    return (int(match.group(1)) if match else -1, name)


def _text(value) -> str:
    value = value[()] if hasattr(value, "shape") else value
    return value.decode() if isinstance(value, bytes) else str(value)


def read_schema(h5: h5py.File, name: str) -> RawImages:
    """Read every `data_<i>` group; `name` is used in error messages. The class names are the
    file's `class_names` attribute when it has one (a user's own classes), else FIRST's four."""
    class_names = _class_names(h5, name)
    groups = sorted((key for key in h5.keys() if key.startswith("data_")), key=_group_order)
    if not groups:
        raise DataError(f"{name}: no 'data_<i>' groups: not an HDF5 file in the FIRST schema")
    images, labels, split, ra, dec, source = [], [], [], [], [], []
    for key in groups:
        where = f"{name}:{key}"
        try:
            img, label, meta = _read_group(h5[key], where, class_names)
        except DataError:
            raise
        except Exception as error:  # h5py raises many types for a malformed group
            raise DataError(f"{where}: malformed group ({type(error).__name__}: {error})") from None
        if images and img.shape != images[0].shape:
            raise DataError(f"{where}: image is {img.shape}, the first image is {images[0].shape}")
        images.append(img)
        labels.append(label)
        for column, value in zip((split, ra, dec, source), meta):
            column.append(value)
    return RawImages(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        split=np.asarray(split),
        ra=np.asarray(ra, dtype=np.float64),
        dec=np.asarray(dec, dtype=np.float64),
        source=np.asarray(source),
        class_names=class_names,
    )


def _class_names(h5: h5py.File, name: str) -> tuple[str, ...]:
    if "class_names" not in h5.attrs:
        return CLASS_NAMES
    names = tuple(_text(n) for n in np.atleast_1d(h5.attrs["class_names"]))
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise DataError(f"{name}: attribute 'class_names' must list at least two distinct names, got {list(names)}")
    return names


def _read_group(group, where: str, class_names: tuple[str, ...]) -> tuple[np.ndarray, int, tuple]:
    """One image, its label and (split, RA, DEC, source); DataError naming `where` when malformed."""
    if not isinstance(group, h5py.Group) or "Img" not in group or "Label_literature" not in group:
        raise DataError(f"{where}: missing 'Img' or 'Label_literature'")
    img = np.asarray(group["Img"][()])
    if img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise DataError(f"{where}: image has shape {img.shape}, expected a square 2-D image")
    if img.dtype != np.uint8:
        raise DataError(f"{where}: image dtype is {img.dtype}, the FIRST schema stores uint8")
    raw_label = group["Label_literature"][()]
    try:
        label = float(raw_label)
    except (TypeError, ValueError):
        names = ", ".join(f"{i} {n}" for i, n in enumerate(class_names))
        raise DataError(f"{where}: class label {raw_label!r} is not a number ({names})") from None
    if label not in range(len(class_names)):
        raise DataError(f"{where}: unknown class label {label:g} (the file's classes: {', '.join(class_names)})")
    attrs = group["Img"].attrs
    split = _text(group["Split_literature"]) if "Split_literature" in group else "train"
    return img, int(label), (split, float(attrs.get("RA", np.nan)), float(attrs.get("DEC", np.nan)),
                             _text(attrs.get("Source", "")))


def write_group(h5: h5py.File, index: int, image: np.ndarray, label: int, source: str,
                ra: float = float("nan"), dec: float = float("nan"), split: str = "train") -> None:
    """Append one image as group `data_<index>` in the FIRST schema."""
    group = h5.create_group(f"data_{index}")
    dataset = group.create_dataset("Img", data=np.asarray(image, dtype=np.uint8))
    dataset.attrs["RA"] = ra
    dataset.attrs["DEC"] = dec
    dataset.attrs["Source"] = source
    group.create_dataset("Label_literature", data=float(label))
    group.create_dataset("Split_literature", data=split.encode())
