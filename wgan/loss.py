"""GAN losses for a class-conditional generator and critic, chosen by name from LOSSES.

A loss takes the networks and a batch and returns loss tensors plus a stats dict; the training
loop owns backward and the optimizer steps and knows only "critic step" and "generator step".
Each loss names the stats it reports and the one the progress bar shows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import intensity
from .diffaug import diff_augment
from .distributed import SINGLE, Shard


@dataclass
class LossConfig:
    name: str = "wgan-gp"  # a key of LOSSES
    gp_lambda: float = 10.0  # weight of the gradient penalty (R1's gamma for logistic-r1)
    gp_every: int = 1  # lazy regularisation: the penalty on every k-th critic step only, weighted by k
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
    return (input_gradient_norm(scores, x_hat) - 1.0).square()


def input_gradient_norm(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Per-sample ||d score / d input||_2 in float32, differentiable w.r.t. the critic's weights."""
    (grad,) = torch.autograd.grad(scores.float().sum(), inputs, create_graph=True)
    return grad.float().flatten(1).norm(dim=1)


class _ConditionalLoss:
    """What every loss shares: the networks, autocast, the critic-input augmentation, and the
    critic's scores of a real batch and a fake batch drawn without generator gradients.
    `autocast` is a context factory (bf16 autocast when AMP is on)."""

    STATS: tuple[str, ...] = ()  # every key critic_loss and generator_loss may report
    PROGRESS: tuple[str, str] = ("W", "Loss/wasserstein")  # (label, stats key) on the progress bar

    def __init__(self, generator, critic, cfg: LossConfig, autocast=contextlib.nullcontext, shard: Shard = SINGLE):
        self.G, self.D, self.cfg, self.autocast, self.shard = generator, critic, cfg, autocast, shard

    def _augment(self, x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return diff_augment(x, self.cfg.diffaug, rng, self.shard) if self.cfg.diffaug else x

    def _penalise(self, critic_step: int) -> float:
        """The penalty's weight at this critic step: lambda * k on every k-th step, else 0."""
        return self.cfg.gp_lambda * self.cfg.gp_every if critic_step % self.cfg.gp_every == 0 else 0.0

    def _scores(self, real, labels, z, rng):
        """(augmented real, augmented fake, D(real), D(fake)) on the generator's intensity scale;
        fake carries no generator graph."""
        with torch.no_grad(), self.autocast():
            fake = self.G.stretched(z, labels).float()
        real = intensity.stretch(real, self.G.cfg.intensity)
        real, fake = self._augment(real, rng), self._augment(fake, rng)
        with self.autocast():
            # One critic pass over real and fake together: the critic has no batch-coupled layers.
            scores = self.D(torch.cat([real, fake]), torch.cat([labels, labels])).float()
        return (real, fake, *scores.chunk(2))

    def _fake_score(self, z, labels, rng) -> torch.Tensor:
        with self.autocast():
            fake = self.G.stretched(z, labels).float()
            return self.D(self._augment(fake, rng), labels).float()


class WGANGPLoss(_ConditionalLoss):
    """WGAN-GP (Gulrajani et al. 2017): E[D(fake)] - E[D(real)] + lambda * GP (+ drift)."""

    STATS = ("Loss/critic", "Loss/wasserstein", "Loss/gp", "Scores/real", "Scores/fake", "Loss/generator")

    def critic_loss(self, real, labels, z, rng, critic_step: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        real, fake, real_score, fake_score = self._scores(real, labels, z, rng)
        wasserstein = real_score.mean() - fake_score.mean()
        loss = -wasserstein
        stats = {"Loss/wasserstein": wasserstein.item(), "Scores/real": real_score.mean().item(),
                 "Scores/fake": fake_score.mean().item()}
        weight = self._penalise(critic_step)
        if weight:
            gp = gradient_penalty(self.D, real, fake, labels, rng, self.autocast, self.shard).mean()
            loss = loss + weight * gp
            stats["Loss/gp"] = gp.item()
        if self.cfg.drift:
            loss = loss + self.cfg.drift * real_score.square().mean()
        stats["Loss/critic"] = loss.item()
        return loss, stats

    def generator_loss(self, z, labels, rng) -> tuple[torch.Tensor, dict[str, float]]:
        """-E[D(G(z, y), y)]."""
        loss = -self._fake_score(z, labels, rng).mean()
        return loss, {"Loss/generator": loss.item()}


class LogisticR1Loss(_ConditionalLoss):
    """Non-saturating logistic loss with the R1 penalty on real images (Mescheder et al. 2018),
    as StyleGAN2 trains: softplus(D(fake)) + softplus(-D(real)) + gamma/2 ||grad D(real)||^2."""

    STATS = ("Loss/critic", "Loss/margin", "Loss/r1", "Scores/real", "Scores/fake", "Loss/generator")
    PROGRESS = ("margin", "Loss/margin")

    def critic_loss(self, real, labels, z, rng, critic_step: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
        real, _, real_score, fake_score = self._scores(real, labels, z, rng)
        loss = F.softplus(fake_score).mean() + F.softplus(-real_score).mean()
        stats = {"Loss/margin": (real_score.mean() - fake_score.mean()).item(),
                 "Scores/real": real_score.mean().item(), "Scores/fake": fake_score.mean().item()}
        weight = self._penalise(critic_step)
        if weight:
            x = real.detach().requires_grad_(True)
            with self.autocast():
                scores = self.D(x, labels)
            r1 = input_gradient_norm(scores, x).square().mean()
            loss = loss + weight / 2 * r1
            stats["Loss/r1"] = r1.item()
        stats["Loss/critic"] = loss.item()
        return loss, stats

    def generator_loss(self, z, labels, rng) -> tuple[torch.Tensor, dict[str, float]]:
        """E[softplus(-D(G(z, y), y))]."""
        loss = F.softplus(-self._fake_score(z, labels, rng)).mean()
        return loss, {"Loss/generator": loss.item()}


LOSSES: dict[str, type[_ConditionalLoss]] = {"wgan-gp": WGANGPLoss, "logistic-r1": LogisticR1Loss}


def build_loss(generator, critic, cfg: LossConfig, autocast=contextlib.nullcontext, shard: Shard = SINGLE):
    """The loss named by cfg.name."""
    if cfg.name not in LOSSES:
        raise ValueError(f"unknown loss '{cfg.name}'; choose from {', '.join(LOSSES)}")
    if cfg.gp_every < 1:
        raise ValueError(f"gp_every must be at least 1, got {cfg.gp_every}")
    return LOSSES[cfg.name](generator, critic, cfg, autocast, shard)
