"""Write bundled FIRST images of some classes as a class folder of FITS files, the way a survey's
own labelled cutouts arrive (the worked example of docs/tutorials/own-survey.md: a 2-class FRI/FRII task):

    wgan-data export-first runs/first-fr-fits --classes FRI,FRII

Every image of those classes in the bundled set (its train, valid and test splits together: a
user's set has no split of its own, the toolkit draws one) becomes `<CLASS>/first_<index>.fits`,
float32 on the 0..255 scale of the FIRST files, with its sky position, pixel scale and source
catalogue in the header. The folder is written under a temporary name and renamed when
complete; an existing folder is never overwritten.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import CLASS_NAMES, DataConfig, DataError, load_dataset

FITS_PER_IMAGE = "first_{index:04d}.fits"


def export(out: Path, classes: list[str]) -> dict[str, int]:
    """Write the folder; returns the number of images per class."""
    from astropy.io import fits

    unknown = [c for c in classes if c not in CLASS_NAMES]
    if unknown or len(set(classes)) < 2:
        raise DataError(f"choose at least two distinct classes of {', '.join(CLASS_NAMES)}; got {', '.join(classes)}")
    if out.exists():
        raise DataError(f"{out} exists; choose a new folder (nothing is overwritten)")
    data = load_dataset(DataConfig(split="literature", subset="all", crop=None))
    scale_deg = data.pixel_scale_arcsec / 3600
    counts = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in classes:
            folder = staging / name
            folder.mkdir()
            index = np.flatnonzero(data.labels.numpy() == CLASS_NAMES.index(name))
            for i in index:
                header = fits.Header()
                header["OBJECT"] = (name, "morphological class (FIRST label)")
                header["CTYPE1"], header["CTYPE2"] = "RA---SIN", "DEC--SIN"
                header["CRVAL1"], header["CRVAL2"] = float(data.ra[i]), float(data.dec[i])
                size = data.resolution
                header["CRPIX1"] = header["CRPIX2"] = (size + 1) / 2
                header["CDELT1"], header["CDELT2"] = -scale_deg, scale_deg
                header["CUNIT1"] = header["CUNIT2"] = "deg"
                header["BUNIT"] = ("scaled", "0..255 per image, as the FIRST data set")
                header["CATALOG"] = (str(data.source[i])[:68], "source catalogue of the label")
                header["ORIGIN"] = "radiogan wgan.data.export_folder"
                image = data.images[i].numpy().astype(np.float32)
                fits.PrimaryHDU(data=image, header=header).writeto(folder / FITS_PER_IMAGE.format(index=int(i)))
            counts[name] = int(index.size)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts
