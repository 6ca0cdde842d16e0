"""Read image sets from their sources: the FIRST wheel, an HDF5 file, or a class folder.

Each reader returns RawImages plus a description of its inputs that keys the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError

from .cache import file_digest
from .imageset import CLASS_NAMES, DataError
from .schema import RawImages, read_schema

FOLDS = 5
IMAGE_SUFFIXES = (".png", ".fits", ".fit", ".fts", ".fits.gz")


def first_zip(name: str) -> Path:
    """Path of one of the HDF5 zips bundled in the installed `firstgalaxydata` wheel.
    Found without importing the package: its `__init__` imports torchvision (and with it
    torch._dynamo), 3.7 s measured that every fresh process (each Dask worker, each command)
    would pay just to learn where a data file lies."""
    spec = importlib.util.find_spec("firstgalaxydata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the FIRST data set needs the firstgalaxydata package: pip install firstgalaxydata")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.exists():
        raise DataError(f"{name} is not in the installed firstgalaxydata package ({path})")
    return path


def first_zip_name(split: str, subset: str, fold: int) -> str:
    """Which bundled zip holds a split scheme's subset."""
    if split == "literature":
        return "galaxy_data_h5.zip"
    if subset == "test":
        return "galaxy_data_crossvalid_test_h5.zip"
    return f"galaxy_data_crossvalid_{fold}_h5.zip"


def read_first_zip(path: Path) -> RawImages:
    """Read the single HDF5 file inside a bundled zip, in memory (never from the network)."""
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.endswith(".h5")]
        if len(members) != 1:
            raise DataError(f"{path}: expected one .h5 file inside, found {members}")
        blob = archive.read(members[0])
    with h5py.File(io.BytesIO(blob), "r") as h5:
        return read_schema(h5, f"{path.name}:{members[0]}")


def read_h5(path: Path) -> RawImages:
    """A user HDF5 file in the FIRST schema."""
    try:
        with h5py.File(path, "r") as h5:
            return read_schema(h5, str(path))
    except OSError as error:
        raise DataError(f"{path}: cannot read as HDF5 ({error})") from None


def folder_digest(root: Path) -> str:
    """Hash of every image file's relative path and bytes under a class folder."""
    digest = hashlib.sha256()
    for path in sorted(_image_files(root)):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


def _image_files(root: Path) -> list[Path]:
    return [
        p for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)
    ]


def folder_classes(root: Path) -> tuple[str, ...]:
    """The class names of a class folder, from its subfolders: FIRST's classes in FIRST's label
    order first (so a folder of FIRST classes fits the released generators), then any other names
    alphabetically."""
    names = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(names) < 2:
        raise DataError(f"{root}: a class folder needs one subfolder per class and at least two classes, "
                        f"found {len(names)} ({', '.join(names) or 'none'})")
    return tuple(sorted(names, key=lambda n: (CLASS_NAMES.index(n) if n in CLASS_NAMES else len(CLASS_NAMES), n)))


def read_folder(root: Path) -> RawImages:
    """A folder with one subfolder of PNG or FITS images per class, any class names."""
    class_names = folder_classes(root)
    images, labels = [], []
    for label, name in enumerate(class_names):
        files = sorted(_image_files(root / name))
        if not files:
            raise DataError(f"{root / name}: class '{name}' has no PNG or FITS images")
        for path in files:
            image = read_image_file(path)
            if images and image.shape != images[0].shape:
                raise DataError(f"{path}: image is {image.shape}, the first image is {images[0].shape}")
            images.append(image)
            labels.append(label)
    count = len(labels)
    return RawImages(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        split=np.full(count, "train"),
        ra=np.full(count, np.nan),
        dec=np.full(count, np.nan),
        source=np.full(count, root.name),
        class_names=class_names,
    )


def read_image_file(path: Path) -> np.ndarray:
    """One square single-channel image as uint8 0..255, checked; errors name the file."""
    if path.name.lower().endswith(".png"):
        image = _read_png(path)
    else:
        image = _read_fits(path)
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise DataError(f"{path}: image has shape {image.shape}, expected a square 2-D image")
    if image.dtype == np.uint8:
        return image
    if not np.isfinite(image).all():
        raise DataError(f"{path}: image has NaN or infinite pixels")
    return scale_to_uint8(image)


def scale_to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale one image to 0..255 on its own, as the FIRST images were made."""
    image = image.astype(np.float64)
    low, high = image.min(), image.max()
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.round((image - low) / (high - low) * 255).astype(np.uint8)


def _read_png(path: Path) -> np.ndarray:
    """Pixel values of a PNG, whatever its mode: palette images through their palette, 1-bit as
    0/255, 16-bit as they are (scaled per image later); refused by name when colour, partly
    transparent, or larger than Pillow reads safely."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return _grey_pixels(img, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large to decode safely (over {Image.MAX_IMAGE_PIXELS} pixels; "
                        "a decompression bomb?)") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise DataError(f"{path}: unreadable PNG ({error})") from None


def _grey_pixels(img: Image.Image, path: Path) -> np.ndarray:
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # a palette image's pixels are indices: read them through the palette
    elif img.mode == "1":
        img = img.convert("L")
    if "A" in img.mode or "a" in img.mode:
        if (np.asarray(img.getchannel("A")) != 255).any():
            raise DataError(f"{path}: image has transparent pixels ({img.mode}); save it without an alpha channel")
        img = img.convert("L" if img.mode.startswith("L") else "RGB")
    if img.mode == "RGB":
        colour = np.asarray(img)
        if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
            raise DataError(f"{path}: colour image; radio images must be single-channel")
        return colour[..., 0]
    if img.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F"):
        raise DataError(f"{path}: unsupported PNG mode {img.mode}; save it as 8- or 16-bit greyscale")
    return np.asarray(img)


def _read_fits(path: Path) -> np.ndarray:
    from astropy.io import fits  # imported here: astropy is slow to import

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.data is not None), None)
            if hdu is None:
                raise DataError(f"{path}: FITS file holds no image data")
            data = np.asarray(hdu.data, dtype=np.float64)
    except DataError:
        raise
    except Exception as error:  # astropy raises many types for a damaged file
        raise DataError(f"{path}: unreadable FITS ({error})") from None
    return np.squeeze(data)
