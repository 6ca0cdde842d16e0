"""Closeness to real at matched sample size.

FID (and precision/recall) of a small set is biased by its size: 400 generated images score lower
than 100 real ones drawn from the very distribution of the reference. So the generated images are
scored at the size of the floor's real set, and the floor is not one draw but the mean and spread
over several draws of unseen real images (the fold's validation and test images of that class:
never seen by the fold's generator). KID, unbiased at any size, is the headline closeness score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distances import kernel_inception_distance, precision_recall
from .quality import Evaluated, feature_fid

SCORES = ("kid", "fid", "precision", "recall")
LOWER_IS_CLOSER = {"kid": True, "fid": True, "precision": False, "recall": False}
# "at the floor": the generated images' mean KID at most this many standard deviations above the
# floor's, the deviation combining both sets' spread over draws (the floor's alone understates it:
# a class has only 150-265 unseen real images, so its draws of 100 overlap)
FLOOR_SPREAD = 2.0


@dataclass
class MatchedSettings:
    size: int = 100  # images per class in each compared set (at most the unseen real images of the class)
    draws: int = 10  # draws of each set; the floor's spread is over these
    kid_subset: int = 100
    seed: int = 0


def matched(reference: Evaluated, generated: Evaluated, unseen: Evaluated, class_names: list[str],
            settings: MatchedSettings) -> dict:
    """Per class: the generated images and unseen real images, each `draws` times `size` of them,
    scored against the reference (the generator's training images); mean and std per score, the
    FID ratio, KID's excess over the floor in floor standard deviations, and a verdict."""
    rng = np.random.default_rng(settings.seed)
    out = {}
    for c, name in enumerate(class_names):
        ref, gen, real = reference.of_class(c), generated.of_class(c), unseen.of_class(c)
        size = min(settings.size, len(gen.labels), len(real.labels))
        if size < 2:
            raise ValueError(f"class {name}: {len(gen.labels)} generated and {len(real.labels)} unseen real images; "
                             "matched scores need at least 2 of each")
        summary = {kind: over_draws(ref, s, size, settings.draws, rng, settings.kid_subset)
                   for kind, s in (("generated", gen), ("floor", real))}
        out[name] = {"size": size, "draws": settings.draws, **summary, **_judge(summary)}
    return out


def _judge(summary: dict) -> dict:
    kid, floor = summary["generated"]["kid"], summary["floor"]["kid"]
    spread = max(float(np.hypot(kid["std"], floor["std"])), 1e-12)
    excess = (kid["mean"] - floor["mean"]) / spread
    return {"fid_ratio": summary["generated"]["fid"]["mean"] / max(summary["floor"]["fid"]["mean"], 1e-12),
            "kid_excess_in_std": excess,
            "verdict": "at the floor" if excess <= FLOOR_SPREAD else "above the floor"}


def over_draws(reference: Evaluated, pool: Evaluated, size: int, draws: int, rng: np.random.Generator,
               kid_subset: int = 100) -> dict[str, dict[str, float]]:
    """Each closeness score of `draws` draws of `size` images of `pool` against `reference`:
    mean and std over the draws."""
    values = [_closeness(reference, _draw(pool, size, rng), kid_subset) for _ in range(draws)]
    return {s: _mean_std([v[s] for v in values]) for s in SCORES}


def _draw(images: Evaluated, size: int, rng: np.random.Generator) -> Evaluated:
    keep = rng.choice(len(images.labels), size, replace=False)
    return Evaluated(images.images[keep], images.labels[keep], images.features[keep])


def _closeness(reference: Evaluated, other: Evaluated, kid_subset: int) -> dict[str, float]:
    kid, _ = kernel_inception_distance(reference.features, other.features, subset_size=kid_subset)
    precision, recall = precision_recall(reference.features, other.features)
    return {"kid": kid, "fid": feature_fid(reference.features, other.features), "precision": precision, "recall": recall}


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def count_at_floor(result: dict) -> tuple[int, int]:
    """(classes at the floor, classes) of a `matched` result."""
    return sum(v["verdict"] == "at the floor" for v in result.values()), len(result)
