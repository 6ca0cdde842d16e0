"""Make a deliberately worse copy of a generator export, to see the generator check fail:

    augment-tools degrade checkpoints/generator.pt runs/degraded.pt --noise 0.3

adds Gaussian noise of `noise` times each weight tensor's standard deviation to every
floating-point weight (seeded), and writes a new export with the same config.
"""

from __future__ import annotations

from pathlib import Path

import torch

from wgan import checkpoint


def degrade(source: Path, target: Path, noise: float, seed: int = 0) -> None:
    payload = checkpoint.load(source, checkpoint.GENERATOR_EXPORT)
    rng = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in payload["state_dict"].items():
        if tensor.is_floating_point() and tensor.numel() > 1 and "running" not in name:
            tensor = tensor + noise * tensor.std() * torch.randn(tensor.shape, generator=rng, dtype=tensor.dtype)
        state[name] = tensor
    checkpoint.save({**payload, "state_dict": state}, target)
