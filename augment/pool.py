"""Generated images for mixing, drawn with fixed seeds and cached by generator hash.

Image i of class c in the pool of training seed s has noise seed `s * SEED_STRIDE + c *
CLASS_STRIDE + offset + i`, so a bigger pool extends a smaller one (ratio 3 uses ratio 2's images
plus more) and every image can be regenerated alone from its seed; fresh-per-epoch pools use
offset epoch * FRESH_STRIDE, and the fresh-per-batch stream its own block of seeds (STREAM_BLOCK).

Two transformations serve the study's protocol options: a fidelity filter (`Accept`: drop the
images that the fold's real-trained classifier confidently puts in another class, drawing more
until every class has its count) and the negative control (`shuffle_labels`: the same images
with the class labels shuffled, so they carry no class information).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import torch

from wgan.data import ImageSet, cache, generated_set, to_uint8
from wgan.sampling import LoadedGenerator, generate

from .reuse import cell_identity, generator_hash
from .sweep_config import Arm, SweepConfig

FRESH_STRIDE = 1_000_000  # at most this many images per class and pool
CLASS_STRIDE = 10_000 * FRESH_STRIDE  # room for 10 000 fresh epochs per class
SEED_STRIDE = 100 * CLASS_STRIDE
STREAM_BLOCK = 99 * CLASS_STRIDE  # seeds of the fresh-per-batch stream (pools use the class blocks 0, 1, ...)
MAX_OVERDRAW = 16  # a filtered pool draws at most this many times its size

Accept = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (uint8 images, labels) -> bool mask of kept images


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
                         gen.pixel_scale_arcsec, tuple(gen.class_names))


def take(pool: ImageSet, counts: list[int]) -> ImageSet:
    """The first counts[c] images of each class of a pool (pools are ordered by class)."""
    labels = pool.labels.numpy()
    keep = np.zeros(len(pool), dtype=bool)
    for c, n in enumerate(counts):
        index = np.flatnonzero(labels == c)
        if n > index.size:
            raise ValueError(f"pool holds {index.size} {pool.class_names[c]} images, {n} wanted")
        keep[index[:n]] = True
    return pool.subset(keep, "take")


def draw_accepted(gen: LoadedGenerator, counts: list[int], seed: int, offset: int = 0, cached: bool = True,
                  accept: Accept | None = None) -> ImageSet:
    """`draw`, keeping only images that `accept` passes: bigger pools are drawn (2x, 4x, ...; they
    extend the smaller ones) until each class has counts[c] accepted images, the first ones in
    seed order. Raises ValueError when a class passes too rarely."""
    return accepted(lambda scaled: draw(gen, scaled, seed, offset, cached), counts, accept, "generated")


def accepted(draw_counts: Callable[[list[int]], ImageSet], counts: list[int], accept: Accept | None,
             what: str) -> ImageSet:
    """The first counts[c] images of each class that `accept` passes, from pools `draw_counts`
    makes 2x, 4x, ... as large as `counts` (all of `draw_counts(counts)` without `accept`)."""
    if accept is None:
        return draw_counts(counts)
    factor = 2
    while True:
        pool = draw_counts([n * factor for n in counts])
        kept = accept(pool.images, pool.labels).numpy()
        have = [int(kept[pool.labels.numpy() == c].sum()) for c in range(len(counts))]
        if all(h >= n for h, n in zip(have, counts)):
            labels = pool.labels.numpy()
            keep = np.zeros(len(pool), dtype=bool)
            for c, n in enumerate(counts):
                keep[np.flatnonzero((labels == c) & kept)[:n]] = True
            return pool.subset(keep, "fidelity-filtered")
        if factor >= MAX_OVERDRAW:
            short = [pool.class_names[c] for c, (h, n) in enumerate(zip(have, counts)) if h < n]
            raise ValueError(f"the fidelity filter passes too few {what} {', '.join(short)} images "
                             f"({', '.join(f'{h}/{n * factor}' for h, n in zip(have, counts))} per class); "
                             "lower the threshold or turn the filter off")
        factor *= 2


def shuffle_labels(pool: ImageSet, seed: int) -> ImageSet:
    """The negative control: the same images, labels permuted at random (class mix kept)."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return generated_set(pool.images, pool.labels[order], f"{pool.fingerprint}:shuffled-labels/{seed}",
                         pool.pixel_scale_arcsec, pool.class_names)


class Stream:
    """Fresh generated images on demand (the fresh-per-batch protocol): every call draws new
    seeds, so no image repeats; deterministic for a given seed and sequence of calls. For the
    control, `shuffled_mix` (generated counts per class) draws each image's class at random in
    those proportions, whatever label it carries."""

    def __init__(self, gen: LoadedGenerator, seed: int, accept: Accept | None = None,
                 shuffled_mix: list[int] | None = None):
        self.gen, self.accept = gen, accept
        self.mix = torch.tensor(shuffled_mix, dtype=torch.float64) if shuffled_mix else None
        self.next_seed = seed * SEED_STRIDE + STREAM_BLOCK
        self.rng = torch.Generator().manual_seed(seed)

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        wanted = labels if self.mix is None else torch.multinomial(self.mix, len(labels), True, generator=self.rng)
        out = torch.empty(len(labels), self.gen.resolution, self.gen.resolution, dtype=torch.uint8)
        todo = torch.arange(len(labels))
        for _ in range(MAX_OVERDRAW):
            images = self._generate(wanted[todo])
            kept = self.accept(images, wanted[todo]) if self.accept else torch.ones(len(todo), dtype=torch.bool)
            out[todo[kept]] = images[kept]
            todo = todo[~kept]
            if not len(todo):
                return out
        raise ValueError(f"the fidelity filter rejected {len(todo)} generated images {MAX_OVERDRAW} times in a row; "
                         "lower the threshold or turn the filter off")

    def state_dict(self) -> dict:
        """Where the stream is (a resumed training goes on drawing the images it would have)."""
        return {"next_seed": self.next_seed, "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.next_seed = int(state["next_seed"])
        self.rng.set_state(state["rng"])

    def _generate(self, labels: torch.Tensor) -> torch.Tensor:
        seeds = torch.arange(self.next_seed, self.next_seed + len(labels), dtype=torch.int64)
        self.next_seed += len(labels)
        return torch.cat([to_uint8(x) for x, _, _ in generate(self.gen.model, labels, seeds)])


def pool_seed(config: SweepConfig, arm: Arm, fold: int, seed: int) -> int:
    """The seed of a cell's generated images: the cell's own seed for nested draws; per arm, one
    derived from everything that defines the arm's images (its identity without the arm's name and
    its control: a control arm shuffles the labels of its arm's very images)."""
    if config.pool_draws == "nested":
        return seed
    identity = cell_identity(config, arm, fold, seed, generator_hash(config, fold, seed))
    for key in ("arm", "control"):
        identity.pop(key)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    # above any training seed a study uses, and small enough that seed * SEED_STRIDE fits in int64
    return PER_ARM_SEEDS + int(digest[:12], 16) % PER_ARM_SEEDS


PER_ARM_SEEDS = 4_000_000
