"""Classically augmented real images, standing in for generated ones: the control that asks
whether a generator adds anything that augmenting the real images does not.

Each image is a real training image of its class (drawn with replacement, seeded) rotated by a
uniform random angle, shifted by up to SHIFT pixels, its flux scaled by a factor in FLUX and
given Gaussian noise of NOISE grey levels on the source's pixels (the background stays at the
survey's floor, as the real images' is). The images then go through the same fidelity filter as
generated ones would, so the control differs from the arm in where the images come from alone.
"""

from __future__ import annotations

import numpy as np
import torch

from wgan.data import ImageSet, generated_set, to_uint8, to_unit_range
from wgan.data.symmetry import BACKGROUND, random_rotation

from .pool import Accept, accepted

SHIFT = 2  # pixels, each axis
FLUX = (0.8, 1.25)  # flux scale factors, log-uniform
NOISE = 2.0  # grey levels (of 0..255), on pixels above the floor


def draw(real: ImageSet, counts: list[int], seed: int) -> ImageSet:
    """counts[c] augmented copies of class c's real images, ordered by class."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    labels = real.labels.numpy()
    picks = [rng.choice(np.flatnonzero(labels == c), n, replace=True) if n else np.zeros(0, dtype=np.int64)
             for c, n in enumerate(counts)]
    index = torch.from_numpy(np.concatenate(picks).astype(np.int64))
    out_labels = torch.from_numpy(np.repeat(np.arange(len(counts)), counts).astype(np.int64))
    if len(index) == 0:
        images = torch.empty(0, *real.images.shape[1:], dtype=torch.uint8)
    else:
        images = to_uint8(augment(to_unit_range(real.images[index]).unsqueeze(1), rng, generator)).squeeze(1)
    return generated_set(images, out_labels, f"augmented-real:{real.fingerprint}:{seed}", real.pixel_scale_arcsec,
                         real.class_names)


def augment(x: torch.Tensor, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
    """Rotation, shift, flux scaling and noise of images [N, 1, H, W] in [-1, 1]."""
    x = random_rotation(x, generator)
    shifts = rng.integers(-SHIFT, SHIFT + 1, size=(len(x), 2))
    x = torch.stack([torch.roll(image, (int(dy), int(dx)), dims=(-2, -1)) for image, (dy, dx) in zip(x, shifts)])
    scale = torch.from_numpy(np.exp(rng.uniform(*np.log(FLUX), size=len(x)))).float().view(-1, 1, 1, 1)
    source = x > BACKGROUND + 1e-6
    x = BACKGROUND + (x - BACKGROUND) * scale
    noise = torch.from_numpy(rng.normal(0.0, NOISE / 127.5, size=tuple(x.shape))).float()
    return torch.where(source, x + noise, x).clamp(BACKGROUND, 1.0)


def draw_accepted(real: ImageSet, counts: list[int], seed: int, accept: Accept | None) -> ImageSet:
    """`draw`, kept by the fidelity filter as generated images are (augment.pool.accepted)."""
    return accepted(lambda scaled: draw(real, scaled, seed), counts, accept, "augmented real")
