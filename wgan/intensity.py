"""Intensity scales the networks can work in, chosen by name from SCALES.

Images everywhere outside the training loss are on the linear scale, mapped to [-1, 1]
(-1 = the FIRST floor, 1 = 255). About 99 % of a FIRST cutout sits at the floor and the faint
emission around a source (FRI jets fading outwards, the wings of bent tails) lives in the
first few percent of the range: on the linear scale a generator whose output is clamped at -1
can set those pixels to the floor at no cost, and its images then hold about half the real
images' activated pixels. A stretched scale gives the faint end a larger share of [-1, 1]:
the critic compares stretched real and generated images, the generator's network outputs the
stretched image, and `Generator.forward` maps it back, so samples, scores and exports stay linear.

Each scale is (stretch, unstretch) on [-1, 1], monotone, fixing -1 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Map = Callable[[torch.Tensor], torch.Tensor]

ASINH_SOFTENING = 0.02  # Lupton et al.'s softening in units of the full range: linear below about 5/255


def _unit(x: torch.Tensor) -> torch.Tensor:
    # float32 even under bf16 autocast: a bf16 image has 8 significant bits, fewer than 0..255 needs
    return ((x.float() + 1) / 2).clamp(0, 1)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    return 2 * _unit(x).sqrt() - 1


def _square(s: torch.Tensor) -> torch.Tensor:
    return 2 * _unit(s).square() - 1


_ASINH_TOP = math.asinh(1 / ASINH_SOFTENING)


def _asinh(x: torch.Tensor) -> torch.Tensor:
    return 2 * torch.asinh(_unit(x) / ASINH_SOFTENING) / _ASINH_TOP - 1


def _sinh(s: torch.Tensor) -> torch.Tensor:
    return 2 * ASINH_SOFTENING * torch.sinh(_unit(s) * _ASINH_TOP) - 1


# name -> (stretch: linear -> network scale, unstretch: network scale -> linear)
SCALES: dict[str, tuple[Map, Map]] = {
    "linear": (_identity, _identity),
    "sqrt": (_sqrt, _square),
    "asinh": (_asinh, _sinh),
}


def stretch(x: torch.Tensor, scale: str) -> torch.Tensor:
    """Linear [-1, 1] images onto the network's scale."""
    return SCALES[scale][0](x)


def unstretch(s: torch.Tensor, scale: str) -> torch.Tensor:
    """The network's scale back onto linear [-1, 1]."""
    return SCALES[scale][1](s)
