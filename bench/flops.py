"""Analytic FLOPs of the networks (2 x multiply-adds of every conv), counted with forward hooks."""

from __future__ import annotations

import torch
from torch import nn


def forward_flops(module: nn.Module, *inputs) -> int:
    """FLOPs of one forward pass of `module` on `inputs` (convolutions only; the rest is noise)."""
    total = 0

    def hook(layer, args, out):
        nonlocal total
        weight = layer.weight
        if isinstance(layer, nn.ConvTranspose2d):
            # every input pixel scatters a (C_out x k x k) patch
            macs = args[0].numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        else:
            macs = out.numel() * weight.shape[1] * weight.shape[2] * weight.shape[3]
        total += 2 * macs

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        module(*inputs)
    for handle in handles:
        handle.remove()
    return total


def critic_step_flops(g_fwd_per_image: int, d_fwd_per_image: int, batch: int) -> int:
    """One WGAN-GP critic step: G forward; critic forward+backward (3x) on real and fake;
    gradient penalty: critic forward, input gradient (1x) and the backward through both (4x)."""
    return batch * (g_fwd_per_image + 2 * 3 * d_fwd_per_image + 6 * d_fwd_per_image)
