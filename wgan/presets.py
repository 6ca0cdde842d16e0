"""Named training recipes: a network plus the critic schedule that suits it.

`wgan-train --preset NAME` starts from one of these; every field can still be overridden by its
own option. The table in docs/guide/training.md says how each was measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .networks import NetworkConfig


@dataclass(frozen=True)
class Preset:
    network: NetworkConfig
    n_critic: int = 5  # critic steps per generator step
    lr_g: float = 1e-4
    lr_d: float = 1e-4  # two-time-scale when it differs from lr_g
    summary: str = ""


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        NetworkConfig(resolution=128, base_channels=64, max_channels=1024),
        summary="the published architecture and schedule: 128 px, 12.0 M / 11.2 M parameters, n_critic 5",
    ),
    "small": Preset(
        NetworkConfig(resolution=64, base_channels=32, max_channels=256),
        summary="the published design with CPU widths: 64 px, 0.9 M / 0.7 M parameters, n_critic 5",
    ),
    "small-resize": Preset(
        NetworkConfig(resolution=64, base_channels=32, max_channels=256, upsample="nearest"),
        n_critic=2,
        lr_d=2e-4,
        summary="small widths, nearest x2 + 3x3 convolutions (no lattice), n_critic 2, critic lr 2x the generator's",
    ),
}
# small-resize on another intensity scale, derived so the two recipes cannot drift apart
PRESETS["small-asinh"] = replace(
    PRESETS["small-resize"], network=replace(PRESETS["small-resize"].network, intensity="asinh"),
    summary="small-resize on the asinh intensity scale (the faint emission gets more of the output range)")

DEFAULT_PRESET = "small-asinh"  # chosen by bench/time_to_quality.py: docs/performance.md, "Generator quality per CPU-minute"


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def scale_width(network: NetworkConfig, factor: float) -> NetworkConfig:
    """The same network with every layer's channel count scaled by `factor` (at least one channel)."""
    if factor == 1:
        return network
    return replace(network, base_channels=max(1, round(network.base_channels * factor)),
                   max_channels=max(1, round(network.max_channels * factor)))


def network(name: str, **overrides) -> NetworkConfig:
    """A copy of a preset's network with fields overridden (e.g. resolution=32)."""
    return NetworkConfig(**{**asdict(get(name).network), **overrides})
