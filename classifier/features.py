"""Feature extraction from a frozen classifier and float64 streaming feature statistics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wgan.data import to_unit_range


class FeatureStats:
    """Running mean and covariance in float64 (exact sums, so batch size never matters)."""

    def __init__(self, dim: int):
        self.n = 0
        self.total = np.zeros(dim, dtype=np.float64)
        self.outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64)
        self.n += x.shape[0]
        self.total += x.sum(axis=0)
        self.outer += x.T @ x

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased sample covariance."""
        mean = self.mean
        return (self.outer - self.n * np.outer(mean, mean)) / max(self.n - 1, 1)


def penultimate_layer(model: nn.Module) -> nn.Linear:
    """The classifier's last linear layer; its input is the feature vector."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the feature extractor has no linear output layer")
    return linears[-1]


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Features [N, D] (float64) of uint8 images [N, H, W]: the input of the model's last linear layer."""
    model.eval()
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handle = penultimate_layer(model).register_forward_pre_hook(lambda _, args: captured.append(args[0].detach()))
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            model(to_unit_range(images[start : start + batch_size].to(device)).unsqueeze(1))
            out.append(captured.pop().double().cpu().numpy())
    finally:
        handle.remove()
    return np.concatenate(out) if out else np.zeros((0, penultimate_layer(model).in_features))
