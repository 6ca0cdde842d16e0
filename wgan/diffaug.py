"""Differentiable augmentation of critic inputs (DiffAugment-style) for small data sets.

The same random policy is applied to real and generated batches (and so to the
gradient-penalty interpolates built from them); every op is differentiable so the
generator still receives gradients. Fill values are the background floor, so an
augmented image stays a plausible radio image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data.symmetry import BACKGROUND
from .distributed import SINGLE, Shard

POLICIES = ("translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' or 'none' -> ()."""
    names = tuple(p.strip() for p in text.split(",") if p.strip() and p.strip() != "none")
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}; choose from {', '.join(POLICIES)}")
    return names


def translate(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125, shard: Shard = SINGLE) -> torch.Tensor:
    """Shift each image by up to ratio*size pixels in x and y, filling with the floor."""
    n, _, h, w = x.shape
    pad = max(1, int(round(h * ratio)))
    shift = shard.draw(n, lambda m: torch.randint(-pad, pad + 1, (m, 2), generator=generator)).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] + pad - shift[:, 0, None, None]
    cols = torch.arange(w, device=x.device)[None, None, :] + pad - shift[:, 1, None, None]
    padded = F.pad(x, [pad, pad, pad, pad], value=BACKGROUND)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # advanced indexing puts C last


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5, shard: Shard = SINGLE) -> torch.Tensor:
    """Blank one random square of side ratio*size per image to the floor."""
    n, _, h, w = x.shape
    size = int(h * ratio + 0.5), int(w * ratio + 0.5)
    centre = shard.draw(n, lambda m: torch.stack([
        torch.randint(0, h + (1 - size[0] % 2), (m,), generator=generator),
        torch.randint(0, w + (1 - size[1] % 2), (m,), generator=generator),
    ], dim=1)).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = ((rows - centre[:, 0, None, None]).abs() < size[0] / 2) & (
        (cols - centre[:, 1, None, None]).abs() < size[1] / 2
    )
    return torch.where(inside[:, None], torch.full_like(x, BACKGROUND), x)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator,
                 shard: Shard = SINGLE) -> torch.Tensor:
    """Apply each op of the policy in order (x is this rank's shard of the global batch)."""
    ops = {"translation": translate, "cutout": cutout}
    for name in policy:
        x = ops[name](x, generator, shard=shard)
    return x
