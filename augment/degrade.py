"""Make a deliberately worse copy of a generator export, to see the generator check fail:

    python -m augment.degrade checkpoints/generator.pt runs/degraded.pt --noise 0.3

adds Gaussian noise of `noise` times each weight tensor's standard deviation to every
floating-point weight (seeded), and writes a new export with the same config.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--noise", type=float, default=0.3, help="noise std as a fraction of each tensor's std")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    degrade(args.source, args.target, args.noise, args.seed)
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()
