"""Does the generator copy its training images? A test to read beside every closeness score.

A generator close to its training set (low FID/KID) may be close because it reproduces them.
For each class, the distance from every generated image to its nearest training image (over the
8 rotations and flips of the training images, which the generator trained with) is compared with
the same distance from unseen real images of that class, which are as close to the training
images as a new draw from the sky is. Copying shows as generated images closer than unseen ones:
- median ratio: median generated distance / median unseen distance (< 1: closer);
- one-sided Mann-Whitney p that the generated distances are smaller;
- near-copy share: generated images closer than the unseen images' 5th percentile (5 % expected);
- C_T of Meehan, Chaudhuri & Dasgupta (2020, AISTATS): the Mann-Whitney Z-score of the two sets
  of distances within cells of the training images (k-means), averaged with the unseen images'
  weights; well below 0 (they use -3) means copying, well above 0 underfitting.
In the extractor's features and in pixels. "suspected" needs both a small p and a near-copy share
twice the expected 5 %, in either space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from scipy.cluster.vq import kmeans2

from wgan.data import symmetry

P_SUSPECT = 0.01
NEAR_QUANTILE = 0.05
CELLS = 3  # k-means cells of a class's training images for C_T (a class has 200-700 of them)
MIN_IN_CELL = 5  # a cell counts in C_T only with this many generated and unseen images


def dihedral(images: np.ndarray) -> np.ndarray:
    """The 8 rotations and flips of each image [N, H, W] -> [8N, H, W] (transform-major, the
    transforms of the data augmentation, wgan.data.symmetry)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    return torch.cat([symmetry.dihedral(x, g) for g in range(8)]).numpy()


def nearest(queries: np.ndarray, support: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each query row to its nearest support row, and that row's index."""
    support = support.astype(np.float64)
    support_sq = (support**2).sum(1)
    dist, index = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk].astype(np.float64)
        sq = (q**2).sum(1)[:, None] + support_sq[None, :] - 2 * q @ support.T
        index[start : start + chunk] = sq.argmin(1)
        dist[start : start + chunk] = np.sqrt(np.clip(sq.min(1), 0, None))
    return dist, index


def compare_distances(generated: np.ndarray, unseen: np.ndarray) -> dict:
    """Median ratio, one-sided Mann-Whitney p (generated smaller) and near-copy share."""
    threshold = np.quantile(unseen, NEAR_QUANTILE)
    return {"median_ratio": float(np.median(generated) / max(np.median(unseen), 1e-12)),
            "mann_whitney_p": float(stats.mannwhitneyu(generated, unseen, alternative="less").pvalue),
            "near_copy_share": float((generated < threshold).mean()),
            "median_generated": float(np.median(generated)), "median_unseen": float(np.median(unseen))}


def meehan_ct(train: np.ndarray, generated: np.ndarray, unseen: np.ndarray, d_generated: np.ndarray,
              d_unseen: np.ndarray, seed: int = 0) -> float:
    """C_T: Mann-Whitney Z of the distances (generated vs unseen) per k-means cell of the
    training set, averaged with the unseen images' share of each cell; NaN without a usable cell."""
    k = min(CELLS, len(train))
    centroids, _ = kmeans2(train.astype(np.float64), k, seed=seed, minit="++")
    cell_g, cell_u = nearest(generated, centroids)[1], nearest(unseen, centroids)[1]
    z, weights = [], []
    for cell in range(k):
        g, u = d_generated[cell_g == cell], d_unseen[cell_u == cell]
        if len(g) < MIN_IN_CELL or len(u) < MIN_IN_CELL:
            continue
        m, n = len(g), len(u)
        u_stat = stats.mannwhitneyu(g, u, alternative="two-sided").statistic  # counts g > u
        z.append((u_stat - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12))
        weights.append(n)
    return float(np.average(z, weights=weights)) if z else float("nan")


def copying_test(train_images: np.ndarray, train_labels: np.ndarray, generated_images: np.ndarray,
                 generated_labels: np.ndarray, unseen_images: np.ndarray, unseen_labels: np.ndarray,
                 class_names: list[str], features: Callable[[np.ndarray], np.ndarray], seed: int = 0) -> dict:
    """Per class: the copying statistics in pixels and in the extractor's features (`features`
    maps uint8 images [N, H, W] to [N, D]), the verdict, and the closest generated/training pairs
    (indices into the class's generated images, and the matching transformed training image)."""
    out = {}
    for c, name in enumerate(class_names):
        train = dihedral(train_images[train_labels == c])
        gen, real = generated_images[generated_labels == c], unseen_images[unseen_labels == c]
        if min(len(train), len(gen), len(real)) < 2:
            raise ValueError(f"class {name}: too few images for the copying test")
        spaces = {"pixels": lambda x: x.reshape(len(x), -1) / 255.0, "features": features}
        result, closest = {}, None
        for space, embed in spaces.items():
            t, g, u = embed(train), embed(gen), embed(real)
            d_g, idx = nearest(g, t)
            d_u, _ = nearest(u, t)
            result[space] = compare_distances(d_g, d_u) | {"c_t": meehan_ct(t, g, u, d_g, d_u, seed)}
            if space == "pixels":
                order = np.argsort(d_g)[:4]
                closest = {"generated": gen[order], "training": train[idx[order]], "distance": d_g[order].tolist()}
        suspected = any(r["mann_whitney_p"] < P_SUSPECT and r["near_copy_share"] >= 2 * NEAR_QUANTILE
                        for r in result.values())
        out[name] = {**result, "n_generated": len(gen), "n_unseen": len(real), "n_training": len(train) // 8,
                     "suspected": bool(suspected), "closest": closest}
    return out


def plot_closest(result: dict, path) -> None:
    """A PNG: per class, the 4 generated images nearest a training image (in pixels), each above
    that training image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wgan.atomic import atomic_path

    names = list(result)
    fig, axes = plt.subplots(2 * len(names), 4, figsize=(8, 4.2 * len(names)))
    for row, name in enumerate(names):
        pairs = result[name]["closest"]
        for j in range(4):
            for k, kind in enumerate(("generated", "training")):
                ax = axes[2 * row + k, j]
                ax.axis("off")
                if j < len(pairs[kind]):
                    ax.imshow(pairs[kind][j], cmap="inferno", vmin=0, vmax=255)
                    label = f"{name} generated, d={pairs['distance'][j]:.2f}" if k == 0 else "nearest training"
                    ax.set_title(label, fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def summary(result: dict) -> dict:
    """The JSON part of a copying_test result (without the image arrays)."""
    return {name: {k: v for k, v in r.items() if k != "closest"} | {"closest_distances": r["closest"]["distance"]}
            for name, r in result.items()}
