"""Label-preserving geometric augmentation applied to whole batches on the training device.

Radio morphology has no preferred orientation, so the 8 rotations/flips of the square
(the dihedral group D4) are lossless; arbitrary-angle rotation is optional (it
interpolates, and fills the corners with the background floor).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BACKGROUND = -1.0  # the floor value of FIRST images after mapping to [-1, 1]


def dihedral(images: torch.Tensor, element: int) -> torch.Tensor:
    """Apply group element 0..7 (k quarter turns, then a flip when element >= 4) to [N, C, H, W]."""
    out = torch.rot90(images, element % 4, dims=(-2, -1))
    return out.flip(-1) if element >= 4 else out


def random_dihedral(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An independent random element of D4 for every image; 8 vectorised ops, no Python per image."""
    elements = torch.randint(0, 8, (images.shape[0],), generator=generator).to(images.device)
    out = torch.empty_like(images)
    for element in range(8):
        index = (elements == element).nonzero().squeeze(1)
        if index.numel():
            out[index] = dihedral(images[index], element)
    return out


def random_rotation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by a uniform random angle (bilinear), corners filled with the floor."""
    n = images.shape[0]
    angle = torch.rand(n, generator=generator, dtype=torch.float64) * (2 * math.pi)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Sample (x - floor) with zero padding so that outside pixels become the floor, not 0.
    rotated = F.grid_sample(images - BACKGROUND, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated + BACKGROUND
