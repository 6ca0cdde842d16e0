"""Sample grids (one row per class, fixed noise) and PNG files, for TensorBoard and the run folder."""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .data import to_uint8
from .networks import NetworkConfig

GRID_SEED = 2**31 - 1  # grids use fixed noise, so successive grids show the same draws


def class_noise(per_class: int, num_classes: int, z_dim: int, seed: int = GRID_SEED):
    """Fixed noise and labels for a grid: rows are classes, columns are draws."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(per_class, z_dim, generator=gen).repeat(num_classes, 1)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return z, labels


@torch.no_grad()
def sample_grid(generator: torch.nn.Module, cfg: NetworkConfig, device: torch.device, per_class: int = 8) -> torch.Tensor:
    """uint8 [1, H, W] grid of EMA samples, one row per class, the same noise in each column."""
    from torchvision.utils import make_grid

    z, labels = class_noise(per_class, cfg.num_classes, cfg.z_dim)
    was_training = generator.training
    generator.eval()
    images = generator(z.to(device), labels.to(device)).float().cpu()
    generator.train(was_training)
    grid = make_grid(images, nrow=per_class, padding=2, pad_value=1.0)[:1]
    return to_uint8(grid)


def save_png(image, path: Path) -> None:
    """Atomically write a uint8 [H, W] array as PNG."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
