"""Exponential moving average of the generator, with a half-life counted in images."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps `self.model`, an averaged copy used for sampling and evaluation.

    beta = 0.5 ** (batch / half_life_images): the half-life is independent of batch size.
    During ramp-up the half-life is capped at rampup * images seen, so early noise from
    the random initialisation does not linger for the first half-life.
    """

    def __init__(self, model: nn.Module, half_life_kimg: float, rampup: float | None):  # default: TrainConfig's
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.half_life_kimg = half_life_kimg
        self.rampup = rampup

    def beta(self, images_seen: int, batch_size: int) -> float:
        half_life = self.half_life_kimg * 1000
        if self.rampup:
            half_life = min(half_life, images_seen * self.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, model: nn.Module, images_seen: int, batch_size: int) -> None:
        beta = self.beta(images_seen, batch_size)
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        # BatchNorm running statistics are copied, not averaged (they already are averages).
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
