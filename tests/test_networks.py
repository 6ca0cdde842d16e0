import pytest
import torch

from tests.helpers import tiny_network
from wgan.networks import UPSAMPLERS, Critic, Generator, NetworkConfig, parameter_count
from wgan.presets import PRESETS
from wgan.presets import network as preset


@pytest.mark.parametrize("name, g_params, d_params", [("paper", 12.0e6, 11.2e6)])
def test_paper_parameter_counts(name, g_params, d_params):
    cfg = preset(name)
    assert cfg.resolution == 128
    assert parameter_count(Generator(cfg)) == pytest.approx(g_params, rel=0.005)
    assert parameter_count(Critic(cfg)) == pytest.approx(d_params, rel=0.005)


def test_small_is_smaller_and_documented_size():
    cfg = PRESETS["small"].network
    assert cfg.resolution == 64
    assert parameter_count(Generator(cfg)) < 1.0e6
    assert parameter_count(Critic(cfg)) < 1.0e6


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("output", ["clamp", "tanh"])
@pytest.mark.parametrize("upsample", list(UPSAMPLERS))
def test_shapes_range_and_gradients(resolution, output, upsample):
    cfg = tiny_network(resolution)
    cfg.output, cfg.upsample = output, upsample
    torch.manual_seed(0)
    G, D = Generator(cfg), Critic(cfg)
    z, y = torch.randn(5, cfg.z_dim), torch.tensor([0, 1, 2, 3, 1])
    x = G(z, y)
    assert x.shape == (5, 1, resolution, resolution)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0
    score = D(x, y)
    assert score.shape == (5,) and torch.isfinite(score).all()
    score.sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name} got no gradient"


def test_critic_has_no_batchnorm():
    for cfg in (p.network for p in PRESETS.values()):
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in Critic(cfg).modules())


def test_label_changes_generator_output():
    cfg = tiny_network()
    G = Generator(cfg).eval()
    z = torch.randn(1, cfg.z_dim).repeat(4, 1)
    x = G(z, torch.arange(4))
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(x[a], x[b])


def test_critic_label_branch_equals_per_sample_planes():
    """The per-class shortcut is the same function as convolving per-sample one-hot planes."""
    cfg = tiny_network()
    D = Critic(cfg)
    images, labels = torch.randn(6, 1, 16, 16), torch.tensor([3, 0, 1, 2, 2, 0])
    planes = torch.nn.functional.one_hot(labels, 4).float()[:, :, None, None].expand(-1, -1, 16, 16)
    direct = torch.nn.functional.leaky_relu(D.label_in(planes), 0.2)
    assert torch.allclose(D.class_planes(torch.float32, images.device)[labels], direct, atol=1e-6)


def test_critic_is_per_sample():
    """No batch coupling: scoring a batch equals scoring each image alone (needed by the GP)."""
    cfg = tiny_network()
    D = Critic(cfg)
    images, labels = torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    batch = D(images, labels)
    single = torch.cat([D(images[i : i + 1], labels[i : i + 1]) for i in range(4)])
    assert torch.allclose(batch, single, atol=1e-5)


@pytest.mark.parametrize("bad", [12, 4, 100])
def test_bad_resolution_rejected(bad):
    with pytest.raises(ValueError, match="power of two"):
        Generator(tiny_network(bad))


def test_presets_name_their_upsampling_and_schedule():
    assert PRESETS["paper"].network.upsample == PRESETS["small"].network.upsample == "transposed"
    resize = PRESETS["small-resize"]
    assert resize.network.upsample == "nearest" and resize.n_critic == 2 and resize.lr_d == 2 * resize.lr_g
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown upsampling 'cubic'"):
        Generator(NetworkConfig(resolution=16, upsample="cubic"))


@pytest.mark.parametrize("name, lattice", [("transposed", True), ("nearest", False), ("bilinear", False)])
def test_only_transposed_upsampling_prints_a_lattice(name, lattice):
    """On a constant input, a stride-2 4x4 transposed convolution gives an output that alternates
    with period 2 (the dot lattice of the released generator's samples); resize + 3x3 convolution
    gives a constant interior."""
    torch.manual_seed(0)
    stage = UPSAMPLERS[name](3, 2, False)
    with torch.no_grad():
        out = stage(torch.ones(1, 3, 8, 8))[0, :, 2:-2, 2:-2]  # interior: away from the zero padding
    spread = (out - out.mean(dim=(1, 2), keepdim=True)).abs().max().item()
    assert (spread > 1e-3) == lattice, spread


def test_transposed_state_dict_keys_unchanged():
    """Exports of the `small` and `paper` presets made before the upsampling registry still load."""
    keys = set(Generator(preset("small")).state_dict())
    assert {"body.0.weight", "body.1.running_mean", "to_image.weight", "to_image.bias"} <= keys


def test_width_scales_every_layer_of_both_networks():
    from wgan.presets import scale_width

    base = preset("small-asinh")
    half = scale_width(base, 0.5)
    assert scale_width(base, 1) is base
    for net in (Generator, Critic):
        full_widths = [m.out_channels for m in net(base).modules() if isinstance(m, torch.nn.Conv2d)]
        half_widths = [m.out_channels for m in net(half).modules() if isinstance(m, torch.nn.Conv2d)]
        # every hidden layer halves; the image layer keeps its one channel and the score its one output
        assert [max(1, w // 2) if w > 1 else w for w in full_widths] == half_widths
    image = Generator(half)(torch.randn(2, half.z_dim), torch.tensor([0, 3]))
    assert image.shape == (2, 1, 64, 64)
