"""Distances between two sets of feature vectors: Fréchet distance, KID, and k-NN precision/recall."""

from __future__ import annotations

import numpy as np


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; tiny negative eigenvalues (round-off) -> 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), computed through symmetric
    eigendecompositions so the result is always real, finite and >= 0 (no complex sqrtm)."""
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eig = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)
    value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.sum(np.sqrt(eig))
    return float(max(value, 0.0))


def kernel_inception_distance(x: np.ndarray, y: np.ndarray, subsets: int = 50, subset_size: int = 100,
                              seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3, as mean and std over random
    subsets (Bińkowski et al. 2018). Unbiased: it averages to 0 for two samples of one distribution."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = x.shape[1]
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
        off = ~np.eye(m, dtype=bool)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkäänniemi et al. 2019).

    Precision: share of generated samples inside the real manifold (off-manifold samples lower it);
    recall: share of real samples inside the generated manifold (dropped modes lower it).
    """

    def coverage(support: np.ndarray, queries: np.ndarray) -> float:
        within = _pairwise(support, support)
        radii = np.sort(within, axis=1)[:, min(k, len(support) - 1)]  # column 0 is the point itself
        return float((_pairwise(queries, support) <= radii[None, :]).any(axis=1).mean())

    return coverage(real, fake), coverage(fake, real)
