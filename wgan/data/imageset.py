"""The in-memory data set: one uint8 image tensor plus per-image labels and metadata."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Label order of the FIRST data set (`Label_literature`): 0 FRI, 1 FRII, 2 Compact, 3 Bent.
CLASS_NAMES: tuple[str, ...] = ("FRI", "FRII", "Compact", "Bent")
GENERATED_SOURCE = "generated"  # the `source` of every generated image in a (mixed) ImageSet


class DataError(ValueError):
    """A data set that cannot be used; the message names the file and the problem."""


@dataclass
class ImageSet:
    """Images of one split, held as a single tensor so batches are cheap index operations."""

    images: torch.Tensor  # [N, H, W] uint8, 0..255 as in the FIRST files
    labels: torch.Tensor  # [N] int64 class index into CLASS_NAMES
    ra: np.ndarray  # [N] float64 degrees J2000 (NaN when unknown)
    dec: np.ndarray  # [N] float64 degrees J2000 (NaN when unknown)
    source: np.ndarray  # [N] str, source catalogue of each image
    fingerprint: str  # hash of the source files, split and preprocessing
    pixel_scale_arcsec: float  # angular size of one pixel after preprocessing
    class_names: tuple[str, ...] = CLASS_NAMES  # label i is class_names[i]; a user's set has its own

    def __len__(self) -> int:
        return int(self.labels.numel())

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, in label order."""
        counts = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, counts))

    def subset(self, mask: np.ndarray, tag: str) -> ImageSet:
        """The images where `mask` is true; `tag` is folded into the fingerprint."""
        index = torch.from_numpy(np.flatnonzero(mask))
        return ImageSet(
            images=self.images[index],
            labels=self.labels[index],
            ra=self.ra[mask],
            dec=self.dec[mask],
            source=self.source[mask],
            fingerprint=f"{self.fingerprint}:{tag}",
            pixel_scale_arcsec=self.pixel_scale_arcsec,
            class_names=self.class_names,
        )


def generated_set(images: torch.Tensor, labels: torch.Tensor, tag: str, pixel_scale: float,
                  class_names: tuple[str, ...] = CLASS_NAMES) -> ImageSet:
    """Generated uint8 images as an ImageSet: no sky position, `source` GENERATED_SOURCE."""
    n = len(labels)
    return ImageSet(images=images, labels=labels, ra=np.full(n, np.nan), dec=np.full(n, np.nan),
                    source=np.full(n, GENERATED_SOURCE), fingerprint=tag, pixel_scale_arcsec=pixel_scale,
                    class_names=tuple(class_names))


def to_unit_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels 0..255 to float32 in [-1, 1] (the range the networks see)."""
    return images_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Map network output in [-1, 1] back to uint8 0..255 (clamping, rounding to nearest)."""
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
