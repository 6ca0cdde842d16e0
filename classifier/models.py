"""Classifier models for 1-channel radio images, registered by name; all trained from scratch."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .equivariant import D4CNN

MODELS: dict[str, Callable[..., nn.Module]] = {}
BATCHNORM_MODELS: set[str] = set()  # the models whose evaluation depends on BatchNorm statistics


def register(name: str, batchnorm: bool = False):
    """Decorator: make a model builder `fn(resolution, num_classes) -> nn.Module` available by name
    (`batchnorm`: the model has BatchNorm layers)."""

    def wrap(builder):
        MODELS[name] = builder
        if batchnorm:
            BATCHNORM_MODELS.add(name)
        return builder

    return wrap


def build_model(name: str, resolution: int, num_classes: int = 4, seed: int | None = None) -> nn.Module:
    """A freshly initialised model; with `seed`, the initial weights depend on the seed alone."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; choose from {', '.join(sorted(MODELS))}")
    if seed is not None:
        torch.manual_seed(seed)
    return MODELS[name](resolution=resolution, num_classes=num_classes)


class SmallCNN(nn.Module):
    """The published baseline CNN: four stride-2 3x3 convolutions (8/16/32/32 channels), each
    with LayerNorm and ReLU, then a hidden layer of 100 units."""

    def __init__(self, resolution: int, num_classes: int = 4, channels=(8, 16, 32, 32), hidden: int = 100):
        super().__init__()
        if resolution < 32:
            raise ValueError(f"the CNN needs images of at least 32 px, got {resolution}")
        layers, c_in, size = [], 1, resolution
        for c_out in channels:
            size = (size - 3) // 2 + 1  # unpadded stride-2 3x3 convolution
            layers += [nn.Conv2d(c_in, c_out, 3, 2), nn.LayerNorm([c_out, size, size]), nn.ReLU(True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * size * size, hidden), nn.ReLU(True),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("cnn")
def small_cnn(resolution: int, num_classes: int = 4) -> nn.Module:
    return SmallCNN(resolution, num_classes)


@register("resnet", batchnorm=True)
def resnet18(resolution: int, num_classes: int = 4) -> nn.Module:
    """torchvision's ResNet-18 with a 1-channel stem; at <= 64 px the stem keeps full resolution
    (3x3 stride-1 conv, no max-pool) so the last stage still sees a spatial map."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    if resolution <= 64:
        model.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    return model


def conv_stem(patch: int, dim: int) -> nn.Sequential:
    """Tokens from a stack of 3x3 stride-2 convolutions (BatchNorm, ReLU; channels doubling up to
    dim / 2) and a 1x1 projection, in place of one patch x patch convolution: the same token grid,
    but with the locality a transformer trained from scratch on a few thousand images cannot
    learn in time (Xiao et al. 2021, "Early convolutions help transformers see better")."""
    steps = patch.bit_length() - 1
    if patch != 2**steps or steps < 1:
        raise ValueError(f"a convolutional stem needs a power-of-two patch size, not {patch}")
    widths = [1] + [max(8, dim // 2 ** (steps - i)) for i in range(steps)]
    layers: list[nn.Module] = []
    for cin, cout in zip(widths, widths[1:]):
        layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], dim, 1))


class ViT(nn.Module):
    """A small Vision Transformer (torchvision's) on 1-channel images, with attention maps. The
    tokens come from one convolution per patch (`stem="patch"`, the original ViT) or from a
    small convolutional stem (`stem="conv"`)."""

    def __init__(self, resolution: int, num_classes: int = 4, patch: int | None = None, layers: int = 6,
                 heads: int = 3, dim: int = 192, stem: str = "patch"):
        super().__init__()
        from torchvision.models.vision_transformer import VisionTransformer

        if stem not in ("patch", "conv"):
            raise ValueError(f"unknown ViT stem '{stem}'; choose patch or conv")
        patch = patch or resolution // 8  # an 8 x 8 grid of patches
        self.vit = VisionTransformer(image_size=resolution, patch_size=patch, num_layers=layers, num_heads=heads,
                                     hidden_dim=dim, mlp_dim=4 * dim, num_classes=num_classes)
        self.vit.conv_proj = conv_stem(patch, dim) if stem == "conv" else nn.Conv2d(1, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Per-layer, per-head attention weights: [N, layers, heads, tokens, tokens] (rows sum to 1);
        token 0 is the class token, the rest the patches in row-major order."""
        vit = self.vit
        tokens = vit._process_input(x)
        tokens = torch.cat([vit.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = vit.encoder.dropout(tokens + vit.encoder.pos_embedding)
        maps = []
        for block in vit.encoder.layers:
            h = block.ln_1(tokens)
            attended, weights = block.self_attention(h, h, h, need_weights=True, average_attn_weights=False)
            maps.append(weights)
            tokens = tokens + block.dropout(attended)
            tokens = tokens + block.mlp(block.ln_2(tokens))
        return torch.stack(maps, dim=1)


@register("vit")
def vit_small(resolution: int, num_classes: int = 4) -> nn.Module:
    return ViT(resolution, num_classes)


@register("vit-conv", batchnorm=True)
def vit_conv(resolution: int, num_classes: int = 4) -> nn.Module:
    return ViT(resolution, num_classes, stem="conv")


@register("d4cnn")
def d4cnn(resolution: int, num_classes: int = 4) -> nn.Module:
    """Rotation- and flip-equivariant group convolutions over D4 (classifier.equivariant): the
    class scores are exactly invariant to the 8 rotations/flips of the square."""
    return D4CNN(resolution, num_classes)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.float(), dim=1)
