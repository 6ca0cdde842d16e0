"""Centre crop and area downsampling of raw uint8 images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .imageset import DataError

FIRST_PIXEL_SCALE_ARCSEC = 1.8


@dataclass(frozen=True)
class Preprocess:
    """How raw images become training images; every field enters the cache key."""

    crop: int | None = 128  # centre crop in source pixels; None: the whole image
    resolution: int | None = None  # output size after area downsampling; None: no resampling

    def output_size(self, source_size: int) -> int:
        crop = self.crop_size(source_size)
        return self.resolution or crop

    def crop_size(self, source_size: int) -> int:
        return source_size if self.crop is None else self.crop

    def check(self, source_size: int, name: str) -> None:
        """Raise DataError naming `name` when an image of this size cannot be preprocessed."""
        crop = self.crop_size(source_size)
        if crop > source_size:
            raise DataError(f"{name}: image is {source_size} px, smaller than the {crop} px crop")
        if self.resolution is not None and (self.resolution > crop or crop % self.resolution):
            raise DataError(
                f"{name}: resolution {self.resolution} must divide the {crop} px crop "
                "(area downsampling by an integer factor)"
            )


def centre_crop(images: np.ndarray, size: int) -> np.ndarray:
    """Central size x size window of [N, H, W] images (the sources sit at the centre)."""
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]


def preprocess_images(images: np.ndarray, prep: Preprocess) -> np.ndarray:
    """Crop and downsample [N, S, S] uint8 images; returns uint8 [N, R, R].

    Area downsampling averages whole blocks of source pixels (flux-preserving); the
    result is rounded back to the 256 levels of the source data.
    """
    size = images.shape[-1]
    out = centre_crop(images, prep.crop_size(size))
    target = prep.output_size(size)
    if target != out.shape[-1]:
        out = area_downsample(torch.from_numpy(np.ascontiguousarray(out)), out.shape[-1] // target).numpy()
    return np.ascontiguousarray(out)


def area_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """uint8 [N, H, W] images averaged over factor x factor blocks, rounded back to 256 levels:
    how the data are resized, so that generated images resized with it compare like with like."""
    if factor == 1:
        return images
    pooled = F.avg_pool2d(images.float()[:, None], factor)
    return pooled[:, 0].round_().clamp_(0, 255).to(torch.uint8)


def pixel_scale(source_scale_arcsec: float, source_size: int, prep: Preprocess) -> float:
    """Angular pixel size after preprocessing."""
    return source_scale_arcsec * prep.crop_size(source_size) / prep.output_size(source_size)
