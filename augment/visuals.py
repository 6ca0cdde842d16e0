"""Figures of the generator report: where classifiers look (Grad-CAM for the CNN, attention
rollout for the ViT) on a fixed set of test images, and 2-D embeddings (PCA, t-SNE) of the
extractor's features, real vs generated, per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wgan.atomic import atomic_path
from wgan.data import ImageSet, to_unit_range


def fixed_images(test: ImageSet, per_class: int = 3) -> list[int]:
    """The first `per_class` test images of every class: the same images in every report."""
    labels = test.labels.numpy()
    return [int(i) for c in range(len(test.class_names)) for i in np.flatnonzero(labels == c)[:per_class]]


def grad_cam(model, images: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of the predicted class on the CNN's last convolutional block, upsampled to the
    image size and scaled to [0, 1] per image: [N, H, W]."""
    model.eval()
    x = to_unit_range(images).unsqueeze(1)
    kept = {}
    last = [m for m in model.features if isinstance(m, torch.nn.ReLU)][-1]
    handle = last.register_forward_hook(lambda m, i, out: kept.update(act=out))
    try:
        with torch.enable_grad():
            logits = model(x)
            picked = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
            grads = torch.autograd.grad(picked, kept["act"])[0]
    finally:
        handle.remove()
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * kept["act"]).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam / cam.flatten(1).max(1).values.clamp(min=1e-12)[:, None, None]


def attention_rollout(model, images: torch.Tensor) -> torch.Tensor:
    """Class-token attention rolled out through all layers (heads averaged, residual added),
    as a patch grid upsampled to the image size, scaled to [0, 1]: [N, H, W]."""
    model.eval()
    maps = model.attention_maps(to_unit_range(images).unsqueeze(1)).mean(2)  # [N, layers, T, T]
    tokens = maps.shape[-1]
    rollout = torch.eye(tokens).expand(maps.shape[0], tokens, tokens)
    for layer in range(maps.shape[1]):
        a = maps[:, layer] + torch.eye(tokens)
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    side = int(round((tokens - 1) ** 0.5))
    grid = rollout[:, 0, 1:].reshape(-1, 1, side, side)
    up = F.interpolate(grid, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return up / up.flatten(1).max(1).values.clamp(min=1e-12)[:, None, None]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_maps(images: torch.Tensor, labels: torch.Tensor, class_names, maps: dict[str, torch.Tensor],
              path: Path) -> None:
    """One column per image; the image, then each map overlaid on it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, len(images), figsize=(1.3 * len(images), 1.4 * rows), squeeze=False)
    images, maps = images.numpy(), {k: v.numpy() for k, v in maps.items()}
    for j, (image, label) in enumerate(zip(images, labels)):
        axes[0, j].imshow(image, cmap="gray")
        axes[0, j].set_title(class_names[int(label)], fontsize=7)
        for i, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(image, cmap="gray")
            axes[i, j].imshow(m[j], cmap="jet", alpha=0.45)
            if j == 0:
                axes[i, j].set_ylabel(name, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)


def _at_most(n: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most n images per class (seeded): keeps t-SNE fast and the plots readable."""
    keep = [rng.permutation(np.flatnonzero(labels == c))[:n] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def embeddings(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray, fake_labels: np.ndarray,
               class_names, path: Path, seed: int = 0, per_class: int = 300) -> None:
    """PCA and t-SNE of extractor features (at most `per_class` points per class and set), one
    panel per class and method; real vs generated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    r, f = _at_most(per_class, real_labels, rng), _at_most(per_class, fake_labels, rng)
    real, real_labels, fake, fake_labels = real[r], real_labels[r], fake[f], fake_labels[f]
    features = np.concatenate([real, fake]).astype(np.float64)
    is_fake = np.r_[np.zeros(len(real), bool), np.ones(len(fake), bool)]
    labels = np.r_[real_labels, fake_labels]
    fig, axes = plt.subplots(2, len(class_names), figsize=(3 * len(class_names), 6), squeeze=False)
    for row, method in enumerate(("PCA", "t-SNE")):
        for c, name in enumerate(class_names):
            x = features[labels == c]
            if len(x) < 5:
                continue
            if method == "PCA":
                xy = PCA(2, random_state=seed).fit_transform(x)
            else:
                xy = TSNE(2, perplexity=min(30, len(x) // 4), random_state=seed, init="pca").fit_transform(x)
            fake_c = is_fake[labels == c]
            ax = axes[row, c]
            ax.scatter(*xy[~fake_c].T, s=4, alpha=0.6, label="real")
            ax.scatter(*xy[fake_c].T, s=4, alpha=0.6, label="generated")
            ax.set_title(f"{name}: {method}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
