"""Class-conditional generator and critic (DCGAN-style, as in the published FIRST wGAN).

Channel widths follow one rule: at spatial size r, width = base * (resolution / 2) / r,
capped at max_channels. With resolution 128 and base 64 this is the published network.
How the generator doubles its resolution is chosen by name from UPSAMPLERS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import intensity


@dataclass
class NetworkConfig:
    """Architecture of both networks; presets below."""

    resolution: int = 64  # image size in pixels (a power of two >= 8)
    z_dim: int = 100  # noise dimension
    num_classes: int = 4  # FRI, FRII, Compact, Bent
    base_channels: int = 32  # width at resolution/2
    max_channels: int = 256  # cap on any width
    output: str = "clamp"  # clamp | tanh: generator output activation onto [-1, 1]
    upsample: str = "transposed"  # a key of UPSAMPLERS: how each generator stage doubles the resolution
    intensity: str = "linear"  # a key of intensity.SCALES: the scale the generator outputs and the critic sees

    def width(self, size: int) -> int:
        return min(self.max_channels, self.base_channels * (self.resolution // 2) // size)

    def validate(self) -> None:
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution {self.resolution} must be a power of two >= 8")
        if self.output not in ("clamp", "tanh"):
            raise ValueError(f"unknown output activation '{self.output}'")
        if self.upsample not in UPSAMPLERS:
            raise ValueError(f"unknown upsampling '{self.upsample}'; choose from {', '.join(UPSAMPLERS)}")
        if self.intensity not in intensity.SCALES:
            raise ValueError(f"unknown intensity scale '{self.intensity}'; choose from {', '.join(intensity.SCALES)}")


def _transposed(c_in: int, c_out: int, bias: bool) -> nn.Module:
    """The published stage: a stride-2 4x4 transposed convolution. Its kernel overlaps unevenly
    (2 of 4 taps per output pixel and phase), which prints a faint dot lattice on the background."""
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)


def _resize_conv(mode: str):
    """x2 resize then a 3x3 convolution (Odena et al. 2016): every output pixel sees the same
    number of taps, so no checkerboard, at 9/16 of the transposed convolution's multiply-adds."""

    def build(c_in: int, c_out: int, bias: bool) -> nn.Module:
        resize = nn.Upsample(scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
        return nn.Sequential(resize, nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))

    return build


# name -> (in channels, out channels, bias) -> a module that doubles height and width
UPSAMPLERS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "transposed": _transposed,
    "nearest": _resize_conv("nearest"),
    "bilinear": _resize_conv("bilinear"),
}


def _stages(resolution: int) -> list[int]:
    """Spatial sizes 4, 8, ..., resolution."""
    return [2**k for k in range(2, int(math.log2(resolution)) + 1)]


class Generator(nn.Module):
    """(z, label) -> image in [-1, 1]; noise and one-hot label each become half of a 4x4 map."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        half = cfg.width(4) // 2
        self.noise_in = nn.Sequential(  # [N, z, 1, 1] -> [N, half, 4, 4]
            nn.ConvTranspose2d(cfg.z_dim, half, 4, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(True)
        )
        self.label_in = nn.Sequential(  # [N, classes, 1, 1] -> [N, half, 4, 4]
            nn.ConvTranspose2d(cfg.num_classes, half, 4, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(True)
        )
        up = UPSAMPLERS[cfg.upsample]
        blocks = []
        for size in _stages(cfg.resolution)[:-2]:  # 4 -> 8 -> ... -> resolution/2
            c_in, c_out = cfg.width(size), cfg.width(2 * size)
            blocks += [up(c_in, c_out, False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        self.body = nn.Sequential(*blocks)
        self.to_image = up(cfg.width(cfg.resolution // 2), 1, True)  # -> resolution

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images on the linear scale, in [-1, 1]."""
        return intensity.unstretch(self.stretched(z, labels), self.cfg.intensity)

    def stretched(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The network's own output: images on its intensity scale (what the critic sees)."""
        onehot = F.one_hot(labels, self.cfg.num_classes).to(z.dtype)[:, :, None, None]
        x = torch.cat([self.noise_in(z[:, :, None, None]), self.label_in(onehot)], dim=1)
        x = self.to_image(self.body(x))
        return torch.tanh(x) if self.cfg.output == "tanh" else x.clamp(-1.0, 1.0)


class PerClassGenerator(nn.Module):
    """One generator per class (e.g. each class's best checkpoint of a run): an image of class c
    comes from member c, conditioned on c as usual. Members are in eval mode in every export, so
    an image depends on its own noise and label only, whatever else is in the batch."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(Generator(cfg) for _ in range(cfg.num_classes))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = z.new_empty(z.shape[0], 1, self.cfg.resolution, self.cfg.resolution)
        for c in labels.unique().tolist():
            chosen = labels == c
            out[chosen] = self.members[c](z[chosen], labels[chosen]).to(out.dtype)
        return out


class Critic(nn.Module):
    """(image, label) -> score; no BatchNorm (it would break the per-sample gradient penalty).

    The label enters as one-hot planes through its own strided conv. That conv's output
    depends only on the class, so it is computed once per class and indexed: identical
    to convolving per-sample planes, at a fraction of the cost.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        first = cfg.width(cfg.resolution // 2)
        self.image_in = nn.Conv2d(1, first // 2, 4, 2, 1)  # -> resolution/2
        self.label_in = nn.Conv2d(cfg.num_classes, first // 2, 4, 2, 1)
        blocks = []
        for size in reversed(_stages(cfg.resolution)[:-2]):  # output sizes resolution/4 ... 4
            blocks += [
                # No bias: LayerNorm subtracts the per-channel mean, which would cancel it.
                nn.Conv2d(cfg.width(2 * size), cfg.width(size), 4, 2, 1, bias=False),
                nn.LayerNorm([size, size]),  # per sample and channel, over the spatial map
                nn.LeakyReLU(0.2, True),
            ]
        self.body = nn.Sequential(*blocks)
        # No bias: a constant offset cancels in D(real) - D(fake) and in the penalty's gradient.
        self.to_score = nn.Conv2d(cfg.width(4), 1, 4, 1, 0, bias=False)  # 4x4 -> 1x1

    def class_planes(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Label-branch features of every class: [classes, first/2, resolution/2, resolution/2]."""
        eye = torch.eye(self.cfg.num_classes, dtype=dtype, device=device)
        planes = eye[:, :, None, None].expand(-1, -1, self.cfg.resolution, self.cfg.resolution)
        return F.leaky_relu(self.label_in(planes), 0.2)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        image_features = F.leaky_relu(self.image_in(images), 0.2)
        planes = self.class_planes(image_features.dtype, images.device)
        # A one-hot product, not planes[labels]: indexing's backward accumulates with atomics
        # across threads, so two runs at the same thread count would differ in the last bits.
        onehot = F.one_hot(labels, self.cfg.num_classes).to(planes.dtype)
        label_features = (onehot @ planes.flatten(1)).view(len(labels), *planes.shape[1:])
        x = torch.cat([image_features, label_features], dim=1)
        return self.to_score(self.body(x)).flatten()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
