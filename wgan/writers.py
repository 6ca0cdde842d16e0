"""Output formats of wgan-sample. Each writer streams batches; single-file formats are
written to a temporary file and renamed at the end, per-image formats file by file."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_path, write_text
from .data.schema import write_group
from .grids import save_png


class SampleWriter(contextlib.AbstractContextManager):
    """write(images uint8 [B, H, W], float [B, H, W] in [-1, 1], labels, seeds) per batch."""

    def __init__(self, out: Path, n: int, resolution: int, class_names: list[str], meta: dict):
        self.out, self.n, self.resolution, self.class_names, self.meta = out, n, resolution, class_names, meta
        self._stack = contextlib.ExitStack()

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def name(self, label: int, seed: int, suffix: str) -> Path:
        return self.out / f"{self.class_names[label]}_seed{seed:010d}.{suffix}"


class PNGWriter(SampleWriter):
    def write(self, images, floats, labels, seeds):
        for image, label, seed in zip(images, labels.tolist(), seeds.tolist()):
            save_png(image, self.name(label, seed, "png"))


class FITSWriter(SampleWriter):
    """One FITS file per image, float32 on the FIRST 0..255 scale, header with provenance."""

    def write(self, images, floats, labels, seeds):
        from astropy.io import fits

        scale_deg = self.meta["pixel_scale_arcsec"] / 3600
        for image, label, seed in zip(floats, labels.tolist(), seeds.tolist()):
            header = fits.Header()
            header["CLASS"] = (self.class_names[label], "morphological class")
            header["LABEL"] = (label, "index of CLASS in the generator's classes")
            header["SEED"] = (seed, "noise seed of this image")
            header["GENHASH"] = (self.meta["generator_hash"], "SHA-256 prefix of the generator file")
            header["GENREL"] = (self.meta["generator_release"], "pinned release name, if any")
            # A complete celestial WCS, so astropy and DS9 read angular scale and orientation. A
            # generated source has no position on the sky: it is placed at RA 0, Dec 0 (CRVAL), with
            # FIRST's orthographic (SIN) projection, north up and east left.
            rows, columns = image.shape[-2:]
            header["WCSAXES"] = 2
            header["CTYPE1"], header["CTYPE2"] = ("RA---SIN", "orthographic, as FIRST"), ("DEC--SIN", "orthographic")
            header["CRPIX1"], header["CRPIX2"] = ((columns + 1) / 2, "image centre"), ((rows + 1) / 2, "image centre")
            header["CRVAL1"], header["CRVAL2"] = (0.0, "no sky position: placed at RA 0"), (0.0, "and Dec 0")
            header["CDELT1"], header["CDELT2"] = (-scale_deg, "deg per pixel"), (scale_deg, "deg per pixel")
            header["CUNIT1"] = header["CUNIT2"] = "deg"
            header["RADESYS"] = "ICRS"
            header["BUNIT"] = ("scaled", "0..255 per image, as the FIRST data set")
            header["ORIGIN"] = "radiogan wgan-sample"
            data = ((image.numpy().astype(np.float32) + 1.0) * 127.5).clip(0, 255)
            with atomic_path(self.name(label, seed, "fits")) as tmp:
                fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True)


class NPZWriter(SampleWriter):
    """images (uint8 [N, H, W]), labels, seeds, class_names; the image array is streamed into the zip."""

    def __enter__(self):
        tmp = self._stack.enter_context(atomic_path(self.out))
        self._zip = self._stack.enter_context(zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True))
        self._images = self._stack.enter_context(self._zip.open("images.npy", "w", force_zip64=True))
        header = {"descr": "|u1", "fortran_order": False, "shape": (self.n, self.resolution, self.resolution)}
        np.lib.format.write_array_header_2_0(self._images, header)
        self._labels, self._seeds = [], []
        return self

    def write(self, images, floats, labels, seeds):
        self._images.write(np.ascontiguousarray(images).tobytes())
        self._labels.append(labels.numpy())
        self._seeds.append(seeds.numpy())

    def __exit__(self, exc_type, *rest):
        self._images.close()
        if exc_type is None:
            for name, array in [("labels", np.concatenate(self._labels)), ("seeds", np.concatenate(self._seeds)),
                                ("class_names", np.asarray(self.class_names))]:
                with self._zip.open(f"{name}.npy", "w") as handle:
                    np.lib.format.write_array(handle, array, allow_pickle=False)
        return super().__exit__(exc_type, *rest)


class H5Writer(SampleWriter):
    """The FIRST schema, so `--data samples.h5` reads the samples back as a data set."""

    def __enter__(self):
        tmp = self._stack.enter_context(atomic_path(self.out))
        self._h5 = self._stack.enter_context(h5py.File(tmp, "w"))
        self._h5.attrs["generator_hash"] = self.meta["generator_hash"]
        self._h5.attrs["generator_release"] = self.meta["generator_release"]
        self._h5.attrs["pixel_scale_arcsec"] = self.meta["pixel_scale_arcsec"]
        self._h5.attrs["class_names"] = list(self.class_names)  # read back by wgan.data.schema
        self._count = 0
        return self

    def write(self, images, floats, labels, seeds):
        for image, label, seed in zip(images, labels.tolist(), seeds.tolist()):
            write_group(self._h5, self._count, image, label, source=f"generated:{self.meta['generator_hash']}:{seed}")
            self._count += 1


WRITERS = {"png": PNGWriter, "npz": NPZWriter, "h5": H5Writer, "fits": FITSWriter}
FORMATS = tuple(WRITERS)
PER_IMAGE = ("png", "fits")  # one file per image, in a folder


FILE_SUFFIXES = {".npz": "npz", ".h5": "h5", ".hdf5": "h5"}  # an --out with these names one file


def resolve_format(out: Path, fmt: str | None) -> str:
    """The format to write: `fmt` when given, else the one `out`'s suffix names, else png. A
    suffix naming another format is refused (`--out x.npz --format png` would make a folder
    called x.npz full of PNGs)."""
    named = FILE_SUFFIXES.get(out.suffix.lower())
    if fmt is None:
        return named or "png"
    if named is not None and named != fmt:
        raise ValueError(f"--out {out}: its suffix means {named}, but --format is {fmt}; drop --format or rename --out")
    return fmt


def output_path(out: Path, fmt: str) -> Path:
    """Per-image formats write into the folder `out`; npz/h5 write `out` itself when it has
    that suffix, else `samples.<fmt>` inside the folder `out`."""
    if fmt in PER_IMAGE:
        return out
    return out if FILE_SUFFIXES.get(out.suffix.lower()) == fmt else out / f"samples.{fmt}"


def output_folder(out: Path, fmt: str) -> Path:
    """The folder that receives the files (and the --grid PNGs)."""
    target = output_path(out, fmt)
    return target if fmt in PER_IMAGE else target.parent


SAMPLES_MARKER = ".radiogan-samples.json"


def claim_folder(folder: Path, generator_hash: str) -> None:
    """Make sure a folder of per-image files (or grids) holds images of one generator only: an
    empty folder is claimed for this generator; one claimed by the same generator is reused
    (image i of a seed is the same image every time); anything else is refused."""
    marker = folder / SAMPLES_MARKER
    if marker.is_file():
        try:
            owner = json.loads(marker.read_text()).get("generator_hash")
        except (OSError, ValueError, AttributeError):
            owner = None
        if owner == generator_hash:
            return
        raise ValueError(f"{folder}: holds images of another generator ({owner}); choose another --out")
    if folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"{folder}: is not empty and holds no images of this generator; choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    write_text(marker, json.dumps({"generator_hash": generator_hash}) + "\n")
