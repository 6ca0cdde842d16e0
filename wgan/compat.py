"""Whether a generator's images can stand in for a data set's images: decided here, once, for
every consumer (augment-eval, augment-cml, wgan-eval, mixing, the benchmarks).

A generator fits a data set when its images have the data's size, its classes are the data's
classes in the same order, and a pixel covers the same patch of sky (the same crop in source
pixels at the same source pixel scale): a generator trained on 64 px crops mixed into 128 px
crops would put its sources into the classifier's training set at twice their angular size.
"""

from __future__ import annotations

from .data import DataConfig
from .sampling import LoadedGenerator

TOLERANCE_ARCSEC = 1e-9


class GeneratorMismatch(ValueError):
    """A generator that does not fit the data or the classifier it is meant for."""


def effective_pixel_scale(data: DataConfig) -> float | None:
    """Arcseconds per pixel of the images `data` loads (after crop and resize); None without a
    crop (the source size, hence the resize factor, is then not in the config)."""
    if data.crop is None:
        return None
    return data.pixel_scale_arcsec * data.crop / (data.resolution or data.crop)


def check_fits(gen: LoadedGenerator, data: DataConfig, class_names: list[str], pixel_scale: float | None = None,
               name: str = "the generator", classifier_resolution: int | None = None) -> None:
    """Raise GeneratorMismatch, naming the difference and the fix, unless `gen` fits `data` (whose
    loaded images have `pixel_scale`, default: computed from the config) and a classifier working
    at `classifier_resolution`, when given."""
    resolution = data.resolution or data.crop
    if resolution is not None and gen.resolution != resolution:
        raise GeneratorMismatch(f"{name} makes {gen.resolution} px images, the data are {resolution} px "
                                f"(pass --resolution {gen.resolution})")
    if list(gen.class_names) != list(class_names):
        raise GeneratorMismatch(f"{name}'s classes {list(gen.class_names)} differ from the data's {list(class_names)}")
    own = gen.config.data
    scale = pixel_scale if pixel_scale is not None else effective_pixel_scale(data)
    if own.crop != data.crop or (scale is not None and abs(gen.pixel_scale_arcsec - scale) > TOLERANCE_ARCSEC):
        raise GeneratorMismatch(
            f"{name} was trained on {own.crop} px crops at {gen.pixel_scale_arcsec:g} arcsec/px, the data are "
            f"{data.crop} px crops at {scale or data.pixel_scale_arcsec:g} arcsec/px: its sources would be mixed in at another angular scale")
    if classifier_resolution is not None and classifier_resolution != gen.resolution:
        raise GeneratorMismatch(f"the classifier works at {classifier_resolution} px but {name} makes "
                                f"{gen.resolution} px images")
