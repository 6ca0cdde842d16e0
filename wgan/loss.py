"""WGAN-GP loss (Gulrajani et al. 2017) for a class-conditional generator and critic.

The loss takes the networks and a batch and returns loss tensors plus a stats dict;
the training loop owns backward and the optimizer steps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .diffaug import diff_augment
from .distributed import SINGLE, Shard


@dataclass
class LossConfig:
    gp_lambda: float = 10.0  # weight of the gradient penalty
    drift: float = 0.0  # optional epsilon * D(real)^2 keeping critic scores near 0 (ProGAN)
    diffaug: tuple[str, ...] = ()  # differentiable critic-input augmentation, e.g. ("translation", "cutout")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor,
                     generator: torch.Generator, autocast=contextlib.nullcontext, shard: Shard = SINGLE) -> torch.Tensor:
    """Per-sample (||grad_x D(x_hat, y)||_2 - 1)^2 at random interpolates x_hat; shape [N].

    The score runs under `autocast`, but the norm is taken in float32 so a bf16
    gradient does not round the penalty away.
    """
    eps = shard.draw(real.shape[0], lambda m: torch.rand(m, 1, 1, 1, generator=generator)).to(real.device, real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    with autocast():
        scores = critic(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(dim=1)
    return (norm - 1.0).square()


class WGANGPLoss:
    """Critic and generator objectives; `autocast` is a context factory (bf16 on CUDA when AMP is on)."""

    def __init__(self, generator, critic, cfg: LossConfig, autocast=contextlib.nullcontext, shard: Shard = SINGLE):
        self.G, self.D, self.cfg, self.autocast, self.shard = generator, critic, cfg, autocast, shard

    def _augment(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return diff_augment(x, self.cfg.diffaug, rng, self.shard) if self.cfg.diffaug else x

    def critic_loss(self, real, labels, z, rng) -> tuple[torch.Tensor, dict[str, float]]:
        """E[D(fake)] - E[D(real)] + lambda * GP (+ drift); fake is drawn without generator grads."""
        with torch.no_grad(), self.autocast():
            fake = self.G(z, labels).float()
        real, fake = self._augment(real, rng), self._augment(fake, rng)
        with self.autocast():
            # One critic pass over real and fake together: the critic has no batch-coupled layers.
            scores = self.D(torch.cat([real, fake]), torch.cat([labels, labels])).float()
        real_score, fake_score = scores.chunk(2)
        gp = gradient_penalty(self.D, real, fake, labels, rng, self.autocast, self.shard).mean()
        wasserstein = real_score.mean() - fake_score.mean()
        loss = -wasserstein + self.cfg.gp_lambda * gp
        if self.cfg.drift:
            loss = loss + self.cfg.drift * real_score.square().mean()
        stats = {"Loss/critic": loss.item(), "Loss/wasserstein": wasserstein.item(), "Loss/gp": gp.item(),
                 "Scores/real": real_score.mean().item(), "Scores/fake": fake_score.mean().item()}
        return loss, stats

    def generator_loss(self, z, labels, rng) -> tuple[torch.Tensor, dict[str, float]]:
        """-E[D(G(z, y), y)]."""
        with self.autocast():
            fake = self.G(z, labels).float()
            score = self.D(self._augment(fake, rng), labels).float()
        loss = -score.mean()
        return loss, {"Loss/generator": loss.item()}
