"""Per-class quality of an image set (e.g. a generator's samples) against real images.

Every score comes with its floor: the same score between the real reference set and a second
real set (e.g. real train vs real test), so "how far above real-vs-real" is always stated.
Scores use a frozen feature extractor (a classifier trained on real FIRST images) and name it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wgan.data import cache

from .astro import compare_statistics, image_statistics
from .distances import frechet_distance, kernel_inception_distance, precision_recall
from .export import LoadedClassifier
from .features import FeatureStats, extract_features, penultimate_layer


@dataclass
class Evaluated:
    """Images with their labels and extractor features."""

    images: np.ndarray  # uint8 [N, H, W]
    labels: np.ndarray  # int64 [N]
    features: np.ndarray  # float64 [N, D]

    def of_class(self, c: int) -> Evaluated:
        keep = self.labels == c
        return Evaluated(self.images[keep], self.labels[keep], self.features[keep])


def featurize(extractor: LoadedClassifier, images: torch.Tensor, labels: torch.Tensor,
              cache_tag: str | None = None) -> Evaluated:
    """Extract features; with `cache_tag` (a fingerprint of the images) they are cached on disk
    under a hash of the images' fingerprint and the extractor's file hash."""
    key = cache.cache_key({"features_of": cache_tag, "extractor": extractor.file_hash}) if cache_tag else None
    cached = cache.load(key) if key else None
    if cached is not None:
        features = cached["features"]
    else:
        features = extract_features(extractor.model, images)
        if key:
            cache.save(key, {"features": features})
    return Evaluated(images.numpy(), labels.numpy(), features)


def feature_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two feature sets [N, D]."""
    stats_a, stats_b = FeatureStats(a.shape[1]), FeatureStats(b.shape[1])
    stats_a.update(a)
    stats_b.update(b)
    return frechet_distance(stats_a.mean, stats_a.cov, stats_b.mean, stats_b.cov)


def compare(reference: Evaluated, other: Evaluated, kid_subset: int = 100, k: int = 3) -> dict:
    """FID, KID (mean, std), k-NN precision/recall and the astrophysical statistics."""
    kid, kid_std = kernel_inception_distance(reference.features, other.features, subset_size=kid_subset)
    precision, recall = precision_recall(reference.features, other.features, k=k)
    return {
        "n_reference": len(reference.labels),
        "n": len(other.labels),
        "fid": feature_fid(reference.features, other.features),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "astro": compare_statistics(image_statistics(reference.images), image_statistics(other.images)),
    }


def per_class(reference: Evaluated, other: Evaluated, class_names: list[str], **kwargs) -> dict:
    """`compare` overall and for each class."""
    out = {"overall": compare(reference, other, **kwargs)}
    for c, name in enumerate(class_names):
        out[name] = compare(reference.of_class(c), other.of_class(c), **kwargs)
    return out


def class_fidelity(extractor: LoadedClassifier, images: Evaluated, class_names: list[str]) -> dict[str, float]:
    """Per class, the share of its images that the extractor (a classifier trained on real images)
    assigns to that class: a cheap usefulness check that FID cannot give (a generator can match
    a class's feature statistics while drawing sources the classifier reads as another class)."""
    layer = penultimate_layer(extractor.model)
    weight = layer.weight.detach().double().cpu().numpy()
    bias = layer.bias.detach().double().cpu().numpy() if layer.bias is not None else 0.0
    predicted = (images.features @ weight.T + bias).argmax(axis=1)
    return {name: float((predicted[images.labels == c] == c).mean()) if (images.labels == c).any() else float("nan")
            for c, name in enumerate(class_names)}


def above_floor(scores: dict, floor: dict) -> dict:
    """For each group (overall, each class): score minus floor for FID and KID (lower is better),
    floor minus score for precision and recall (higher is better): how much worse than real."""
    return {
        group: {
            "fid": scores[group]["fid"] - floor[group]["fid"],
            "kid": scores[group]["kid"] - floor[group]["kid"],
            "precision": floor[group]["precision"] - scores[group]["precision"],
            "recall": floor[group]["recall"] - scores[group]["recall"],
        }
        for group in scores
    }
