from types import SimpleNamespace

import pytest
import torch

from tests.helpers import tiny_network
from wgan.diffaug import cutout, diff_augment, parse_policy, translate
from wgan.ema import EMA
from wgan.loss import LOSSES, LossConfig, build_loss, gradient_penalty
from wgan.networks import Critic, Generator


class LinearCritic(torch.nn.Module):
    """D(x, y) = <w, x> + b_y: the input gradient is w for every sample."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)
        self.b = torch.nn.Parameter(torch.randn(4))

    def forward(self, x, y):
        return (x * self.w).flatten(1).sum(1) + self.b[y]


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_gradient_penalty_matches_analytic_value_for_linear_critic(scale):
    torch.manual_seed(0)
    w = torch.randn(1, 1, 8, 8)
    w = w / w.norm() * scale
    critic = LinearCritic(w)
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    gp = gradient_penalty(critic, real, fake, torch.tensor([0, 1, 2, 3, 0]), torch.Generator().manual_seed(1))
    expected = torch.full((5,), (scale - 1.0) ** 2)
    assert torch.allclose(gp, expected, atol=1e-5)
    # It is differentiable w.r.t. the critic's weights: d/dw (|w|-1)^2 = 2(|w|-1) w/|w|.
    gp.mean().backward()
    assert torch.allclose(critic.w.grad, 2 * (scale - 1) * w / scale, atol=1e-5)


class SquareCritic(torch.nn.Module):
    """D(x, y) = sum(w * x^2) + b_y: the input gradient 2 w x differs from sample to sample."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w)
        self.b = torch.nn.Parameter(torch.zeros(4))

    def forward(self, x, y):
        return (self.w * x.square()).flatten(1).sum(1) + self.b[y]


def test_gradient_penalty_is_taken_at_the_interpolates_of_real_and_fake():
    """With a nonlinear critic the penalty depends on where it is taken: between real and fake,
    at the mixing weights the generator draws (a penalty between real and real, or at the real
    images, would give other values; a linear critic cannot tell them apart)."""
    torch.manual_seed(0)
    w = torch.rand(1, 1, 8, 8)
    real, fake = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8) + 2.0
    gp = gradient_penalty(SquareCritic(w), real, fake, torch.tensor([0, 1, 2, 3, 0]), torch.Generator().manual_seed(3))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(3))  # the same draw
    x_hat = eps * real + (1 - eps) * fake
    expected = ((2 * w * x_hat).flatten(1).norm(dim=1) - 1).square()
    assert torch.allclose(gp, expected, rtol=1e-5)
    at_real = ((2 * w * real).flatten(1).norm(dim=1) - 1).square()
    assert not torch.allclose(gp, at_real, rtol=1e-2)


def test_ema_copies_buffers_and_averages_weights():
    """BatchNorm running statistics are copied from the live model at every update (they are
    averages already); the weights move towards the live ones by the EMA step."""
    live = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    ema = EMA(live, half_life_kimg=0.1, rampup=None)
    live.train()
    live(torch.randn(16, 3) * 5 + 2)  # the live BatchNorm statistics move
    with torch.no_grad():
        live[0].weight.add_(1.0)
    before = ema.model[0].weight.clone()
    ema.update(live, images_seen=1000, batch_size=10)
    for mine, theirs in zip(ema.model.buffers(), live.buffers(), strict=True):
        assert torch.equal(mine, theirs)
    beta = ema.beta(1000, 10)
    assert torch.allclose(ema.model[0].weight, live[0].weight.lerp(before, beta))
    assert not torch.equal(ema.model[0].weight, live[0].weight)
    # the averaged copy is never trained: no gradients kept for it (memory, and no optimiser can reach it)
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_finite_and_all_critic_parameters_get_gradients(name):
    cfg = tiny_network()
    torch.manual_seed(0)
    G, D = Generator(cfg), Critic(cfg)
    loss = build_loss(G, D, LossConfig(name=name, diffaug=("translation", "cutout")))
    rng = torch.Generator().manual_seed(0)
    real, labels, z = torch.rand(6, 1, 16, 16) * 2 - 1, torch.arange(6) % 4, torch.randn(6, cfg.z_dim)
    loss_d, stats = loss.critic_loss(real, labels, z, rng)
    loss_d.backward()
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert set(stats) <= set(loss.STATS) and loss.PROGRESS[1] in stats
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    assert all(p.grad is None for p in G.parameters()), "critic step must not touch generator grads"
    loss_g, _ = loss.generator_loss(z, labels, rng)
    loss_g.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_diffaug_is_differentiable_and_seeded():
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    a = diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(3))
    b = diff_augment(x, ("translation", "cutout"), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translate_moves_content_and_fills_floor():
    x = torch.full((1, 1, 16, 16), -1.0)
    x[0, 0, 8, 8] = 1.0
    out = translate(x, torch.Generator().manual_seed(0))
    assert (out == 1.0).sum() <= 1 and ((out == -1.0) | (out == 1.0)).all()


def test_cutout_blanks_a_square_to_floor():
    x = torch.ones(2, 1, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0))
    blanked = (out == -1.0).sum(dim=(1, 2, 3))
    assert ((blanked > 0) & (blanked <= 64)).all()


def test_parse_policy():
    assert parse_policy("translation,cutout") == ("translation", "cutout")
    assert parse_policy("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation"):
        parse_policy("colour")


def test_ema_half_life_in_images():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, half_life_kimg=0.1, rampup=None)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for step in range(10):  # 10 updates of 10 images = one half-life of 100 images
        ema.update(model, images_seen=(step + 1) * 10, batch_size=10)
    assert ema.model.weight.item() == pytest.approx(0.5, abs=1e-6)


def test_ema_rampup_shortens_early_half_life():
    ema = EMA(torch.nn.Linear(1, 1), half_life_kimg=10.0, rampup=0.05)
    assert ema.beta(images_seen=0, batch_size=1) == 0.0  # nothing seen yet: the first update copies the weights
    assert ema.beta(images_seen=1000, batch_size=50) == pytest.approx(0.5)
    assert ema.beta(images_seen=10**7, batch_size=50) == pytest.approx(0.5 ** (50 / 10000))


def _critic_loss(name, gp_every, step, seed=0):
    cfg = tiny_network()
    torch.manual_seed(seed)
    G, D = Generator(cfg), Critic(cfg)
    loss = build_loss(G, D, LossConfig(name=name, gp_every=gp_every))
    real, labels, z = torch.rand(6, 1, 16, 16) * 2 - 1, torch.arange(6) % 4, torch.randn(6, cfg.z_dim)
    return loss.critic_loss(real, labels, z, torch.Generator().manual_seed(0), critic_step=step)


@pytest.mark.parametrize("name, key", [("wgan-gp", "Loss/gp"), ("logistic-r1", "Loss/r1")])
def test_lazy_penalty_on_every_kth_step_weighted_by_k(name, key):
    full, full_stats = _critic_loss(name, 1, step=5)
    lazy, lazy_stats = _critic_loss(name, 4, step=8)
    skipped, skipped_stats = _critic_loss(name, 4, step=9)
    assert key in full_stats and key in lazy_stats and key not in skipped_stats
    assert lazy_stats[key] == pytest.approx(full_stats[key], rel=1e-5)  # same draws, same penalty
    weight = 10.0 if name == "wgan-gp" else 5.0  # lambda, or gamma / 2 for R1
    assert (lazy - skipped).item() == pytest.approx(4 * weight * lazy_stats[key], rel=1e-4)
    assert (full - skipped).item() == pytest.approx(weight * full_stats[key], rel=1e-4)


class ZeroGenerator(torch.nn.Module):
    """Blank 8x8 images on the linear scale (the loss asks a generator for its own scale's output)."""

    cfg = SimpleNamespace(intensity="linear")

    def stretched(self, z, y):
        return torch.zeros(len(y), 1, 8, 8)


def test_r1_matches_analytic_value_for_linear_critic():
    """R1 = E ||grad_x D(x)||^2 = |w|^2 for a linear critic."""
    torch.manual_seed(0)
    w = torch.randn(1, 1, 8, 8)
    critic = LinearCritic(w)
    loss = build_loss(ZeroGenerator(), critic, LossConfig(name="logistic-r1"))
    _, stats = loss.critic_loss(torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3),
                                torch.Generator().manual_seed(0))
    assert stats["Loss/r1"] == pytest.approx(w.square().sum().item(), rel=1e-5)


@pytest.mark.parametrize("cfg, message", [(LossConfig(name="hinge"), "^unknown loss 'hinge'; choose from wgan-gp, logistic-r1$"),
                                          (LossConfig(gp_every=0), "gp_every")])
def test_bad_loss_config_rejected(cfg, message):
    net = tiny_network()
    with pytest.raises(ValueError, match=message):
        build_loss(Generator(net), Critic(net), cfg)


def test_logistic_losses_and_stats_match_their_formulas():
    """softplus(D(fake)) + softplus(-D(real)) for the critic, softplus(-D(fake)) for the
    generator, the margin E D(real) - E D(fake); no penalty at gamma 0."""
    torch.manual_seed(0)
    critic = LinearCritic(torch.randn(1, 1, 8, 8))
    loss = build_loss(ZeroGenerator(), critic, LossConfig(name="logistic-r1", gp_lambda=0.0))
    real, labels, z = torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3)
    with torch.no_grad():
        real_score, fake_score = critic(real, labels), critic(torch.zeros(5, 1, 8, 8), labels)
    softplus = torch.nn.functional.softplus
    value, stats = loss.critic_loss(real, labels, z, torch.Generator().manual_seed(0))
    expected = (softplus(fake_score).mean() + softplus(-real_score).mean()).item()
    assert value.item() == pytest.approx(expected) and stats["Loss/critic"] == pytest.approx(expected)
    assert stats["Loss/margin"] == pytest.approx((real_score.mean() - fake_score.mean()).item())
    assert "Loss/r1" not in stats
    value, stats = loss.generator_loss(z, labels, torch.Generator().manual_seed(0))
    assert stats == {"Loss/generator": pytest.approx(softplus(-fake_score).mean().item())}
    assert value.item() == stats["Loss/generator"]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_augmented_losses_draw_from_the_generator_they_are_given(name):
    """With critic-input augmentation both losses draw from the training state's generator, so a
    run (and a resumed run) repeats whatever else used the global random state."""
    torch.manual_seed(0)
    loss = build_loss(ZeroGenerator(), LinearCritic(torch.randn(1, 1, 8, 8)),
                      LossConfig(name=name, gp_lambda=0.0, diffaug=("translation", "cutout")))
    real, labels, z = torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3)
    values = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        critic = loss.critic_loss(real, labels, z, torch.Generator().manual_seed(7))[0].item()
        generator = loss.generator_loss(z, labels, torch.Generator().manual_seed(7))[0].item()
        values.append((critic, generator))
    assert values[0] == values[1]
    plain = build_loss(ZeroGenerator(), loss.D, LossConfig(name=name, gp_lambda=0.0))
    unaugmented = (plain.critic_loss(real, labels, z, torch.Generator().manual_seed(7))[0].item(),
                   plain.generator_loss(z, labels, torch.Generator().manual_seed(7))[0].item())
    assert values[0][0] != unaugmented[0] and values[0][1] != unaugmented[1]  # the critic saw augmented images


def test_the_drift_term_adds_epsilon_times_the_mean_squared_real_score():
    torch.manual_seed(0)
    critic = LinearCritic(torch.randn(1, 1, 8, 8))
    real, labels, z = torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3)
    values = [build_loss(ZeroGenerator(), critic, LossConfig(gp_lambda=0.0, drift=drift)).critic_loss(
        real, labels, z, torch.Generator().manual_seed(0))[0].item() for drift in (0.0, 0.25)]
    with torch.no_grad():
        expected = 0.25 * critic(real, labels).square().mean().item()
    assert values[1] - values[0] == pytest.approx(expected, rel=1e-5)


def test_wgan_losses_and_stats_match_their_formulas():
    """E D(fake) - E D(real) for the critic (no penalty at lambda 0), -E D(fake) for the generator."""
    torch.manual_seed(0)
    critic = LinearCritic(torch.randn(1, 1, 8, 8))
    loss = build_loss(ZeroGenerator(), critic, LossConfig(name="wgan-gp", gp_lambda=0.0))
    real, labels, z = torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3)
    with torch.no_grad():
        real_score, fake_score = critic(real, labels).mean().item(), critic(torch.zeros(5, 1, 8, 8), labels).mean().item()
    value, stats = loss.critic_loss(real, labels, z, torch.Generator().manual_seed(0))
    assert value.item() == pytest.approx(fake_score - real_score) and "Loss/gp" not in stats
    assert stats["Loss/wasserstein"] == pytest.approx(real_score - fake_score)
    assert (stats["Scores/real"], stats["Scores/fake"]) == (pytest.approx(real_score), pytest.approx(fake_score))
    value, stats = loss.generator_loss(z, labels, torch.Generator().manual_seed(0))
    assert value.item() == pytest.approx(-fake_score) and stats == {"Loss/generator": pytest.approx(-fake_score)}


def test_the_penalty_draws_its_mixing_weights_from_the_generator_it_is_given():
    torch.manual_seed(0)
    loss = build_loss(ZeroGenerator(), SquareCritic(torch.rand(1, 1, 8, 8)), LossConfig(name="wgan-gp"))
    real, labels, z = torch.randn(5, 1, 8, 8), torch.arange(5) % 4, torch.randn(5, 3)
    penalties = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        penalties.append(loss.critic_loss(real, labels, z, torch.Generator().manual_seed(7))[1]["Loss/gp"])
    assert penalties[0] == penalties[1]
