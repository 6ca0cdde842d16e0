"""Generated images for mixing, drawn with fixed seeds and cached by generator hash.

Image i of class c in the pool of training seed s has noise seed `s * SEED_STRIDE + c *
CLASS_STRIDE + offset + i`, so a bigger pool extends a smaller one (ratio 3 uses ratio 2's images
plus more) and every image can be regenerated alone from its seed; `--fresh` pools use offset
epoch * FRESH_STRIDE.
"""

from __future__ import annotations

import numpy as np
import torch

from classifier.tstr import generated_set
from wgan.data import CLASS_NAMES, ImageSet, cache, to_uint8
from wgan.sampling import LoadedGenerator, generate

FRESH_STRIDE = 1_000_000  # at most this many images per class and pool
CLASS_STRIDE = 10_000 * FRESH_STRIDE  # room for 10 000 fresh epochs per class
SEED_STRIDE = 100 * CLASS_STRIDE


def pool_seeds(counts: list[int], seed: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and noise seeds of a pool with counts[c] images of class c."""
    labels, seeds = [], []
    for c, n in enumerate(counts):
        if n >= FRESH_STRIDE:
            raise ValueError(f"at most {FRESH_STRIDE - 1} generated images per class, asked for {n}")
        start = seed * SEED_STRIDE + c * CLASS_STRIDE + offset
        labels.append(torch.full((n,), c, dtype=torch.int64))
        seeds.append(torch.arange(start, start + n, dtype=torch.int64))
    return torch.cat(labels), torch.cat(seeds)


def draw(gen: LoadedGenerator, counts: list[int], seed: int, offset: int = 0, cached: bool = True) -> ImageSet:
    """Generate the pool (uint8, like the real images); cached on disk by generator hash, counts,
    seed and offset, so every cell of a sweep and every rerun reuses the same images."""
    key = cache.cache_key({"kind": "generated-pool", "generator": gen.file_hash, "counts": counts,
                           "seed": seed, "offset": offset})
    arrays = cache.load(key) if cached else None
    if arrays is None:
        labels, seeds = pool_seeds(counts, seed, offset)
        batches = [to_uint8(images) for images, _, _ in generate(gen.model, labels, seeds)]
        empty = torch.empty(0, gen.resolution, gen.resolution, dtype=torch.uint8)
        arrays = {"images": torch.cat(batches).numpy() if batches else empty.numpy(), "labels": labels.numpy()}
        if cached:
            cache.save(key, arrays)
    tag = f"generated:{gen.file_hash[:16]}:{key}"
    return generated_set(torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"]), tag,
                         gen.pixel_scale_arcsec)


def take(pool: ImageSet, counts: list[int]) -> ImageSet:
    """The first counts[c] images of each class of a pool (pools are ordered by class)."""
    labels = pool.labels.numpy()
    keep = np.zeros(len(pool), dtype=bool)
    for c, n in enumerate(counts):
        index = np.flatnonzero(labels == c)
        if n > index.size:
            raise ValueError(f"pool holds {index.size} {CLASS_NAMES[c]} images, {n} wanted")
        keep[index[:n]] = True
    return pool.subset(keep, "take")
