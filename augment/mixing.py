"""How many generated images of each class join the real training split, and the joining itself.

The ratio r is generated/real. Modes:
- `realistic`: class c gets round(r * n_c) generated images, so the generated class mix copies
  the real one;
- `balanced`: round(r * N) generated images in total, given to the rarest classes first so the
  combined set is as class-balanced as that total allows (water filling);
- `per-class`: an explicit ratio per class name (`FRI=2,Bent=3`); unnamed classes get none.

Only a real *training* split can be mixed (`mix` refuses anything else), and the validation and
test splits of an evaluation are loaded from the data source directly, never through this
module: generated images cannot reach them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from wgan.compat import TOLERANCE_ARCSEC
from wgan.data import ImageSet

MODES = ("balanced", "realistic", "per-class")


@dataclass(frozen=True)
class MixSpec:
    """What to add: a global ratio in one of the modes, or per-class ratios (mode `per-class`)."""

    ratio: float = 0.0
    mode: str = "balanced"
    per_class: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        values = list(self.per_class.values()) if self.mode == "per-class" else [self.ratio]
        if self.mode not in MODES:
            raise ValueError(f"unknown mixing mode '{self.mode}'; choose from {', '.join(MODES)}")
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError(f"ratios must be finite and >= 0, got {', '.join(map(str, values))}")
        if self.mode == "per-class" and not self.per_class:
            raise ValueError("mode 'per-class' needs at least one CLASS=RATIO")

    @property
    def label(self) -> str:
        """A short stable name, used for result files and table rows."""
        if self.mode == "per-class":
            return ",".join(f"{c}={v:g}" for c, v in self.per_class.items())
        return f"r={self.ratio:g}"

    @property
    def is_zero(self) -> bool:
        return (sum(self.per_class.values()) if self.mode == "per-class" else self.ratio) == 0


def parse_ratio(text: str, mode: str) -> MixSpec:
    """'2', '0.5' or 'FRI=2,Bent=3' (which implies mode `per-class`); raises ValueError."""
    if "=" not in text:
        try:
            return MixSpec(ratio=float(text), mode=mode)
        except ValueError as error:
            raise ValueError(f"ratio '{text}': {error}") from None
    per_class = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() in per_class:
            raise ValueError(f"ratio '{text}': class {name.strip()} is given twice")
        try:
            per_class[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"ratio '{text}': '{value}' is not a number") from None
    return MixSpec(mode="per-class", per_class=per_class)


def check_classes(spec: MixSpec, class_names: tuple[str, ...]) -> None:
    """Refuse per-class ratios that name a class the data does not have."""
    unknown = set(spec.per_class) - set(class_names)
    if unknown:
        raise ValueError(f"unknown class {', '.join(sorted(unknown))} in per-class ratio '{spec.label}'; "
                         f"the data's classes are {', '.join(class_names)}")


def generated_counts(real_counts: dict[str, int], spec: MixSpec) -> list[int]:
    """Generated images per class (label order) for a real training set with these class counts
    (class name -> count, in label order)."""
    check_classes(spec, tuple(real_counts))
    counts = list(real_counts.values())
    if spec.mode == "realistic":
        return [_round(spec.ratio * n) for n in counts]
    if spec.mode == "per-class":
        return [_round(spec.per_class.get(name, 0.0) * n) for name, n in real_counts.items()]
    return _water_fill(counts, _round(spec.ratio * sum(counts)))


def _round(x: float) -> int:
    """Half up, so 0.5 -> 1 everywhere (Python's round() would give 0)."""
    return int(math.floor(x + 0.5))


def _water_fill(counts: list[int], total: int) -> list[int]:
    """Split `total` so that the smallest classes are raised to a common level; the remainder of
    the integer split goes to the classes with the largest fractional share, ties by label."""
    real = np.asarray(counts, dtype=np.float64)
    if total == 0:
        return [0] * len(counts)
    low, high = real.min(), real.max() + total
    for _ in range(100):  # bisection on the fill level; converges far below one image
        level = (low + high) / 2
        low, high = (level, high) if np.maximum(level - real, 0).sum() < total else (low, level)
    share = np.maximum(high - real, 0)
    share *= total / share.sum()
    out = np.floor(share).astype(int)
    remainder = total - int(out.sum())
    order = sorted(range(len(counts)), key=lambda c: (-(share[c] - out[c]), c))
    for c in order[:remainder]:
        out[c] += 1
    return out.tolist()


def real_fraction(train: ImageSet, fraction: float, seed: int) -> ImageSet:
    """A class-stratified random subset with round(fraction * n_c) images of each class (at least
    one), drawn with `seed`; fraction 1 returns the set unchanged."""
    if not 0 < fraction <= 1:
        raise ValueError(f"real fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return train
    return train.subset(_stratified(train, fraction, seed), f"real-fraction={fraction:g}/seed={seed}")


INNER_SEED = 0  # one inner split per fold, shared by every arm and seed, so pairs stay paired


def inner_split(train: ImageSet, fraction: float) -> tuple[ImageSet, ImageSet]:
    """(the training images a classifier learns from, the inner validation images that pick its
    epoch): a class-stratified `fraction` of the training split held out, the same for every cell
    of a fold, so the fold's validation split is never used to choose anything."""
    if not 0 < fraction < 1:
        raise ValueError(f"inner split must be in (0, 1), got {fraction}")
    held = _stratified(train, fraction, INNER_SEED)
    return (train.subset(~held, f"inner-train={fraction:g}"), train.subset(held, f"inner-valid={fraction:g}"))


def _stratified(train: ImageSet, fraction: float, seed: int) -> np.ndarray:
    """A mask of round(fraction * n_c) images of each class c (at least one), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(train), dtype=bool)
    labels = train.labels.numpy()
    for c in range(len(train.class_names)):
        index = np.flatnonzero(labels == c)
        if index.size:
            keep[rng.choice(index, max(1, _round(fraction * index.size)), replace=False)] = True
    return keep


def mix(train: ImageSet, generated: ImageSet) -> ImageSet:
    """The real training split followed by the generated images (same resolution required)."""
    if not train.fingerprint.endswith("/train") and "/train:" not in train.fingerprint:
        raise ValueError(f"only a training split can take generated images, not '{train.fingerprint}'")
    if generated.images.shape[1:] != train.images.shape[1:]:
        raise ValueError(f"generated images are {tuple(generated.images.shape[1:])}, real ones "
                         f"{tuple(train.images.shape[1:])}")
    if abs(generated.pixel_scale_arcsec - train.pixel_scale_arcsec) > TOLERANCE_ARCSEC:
        raise ValueError(f"generated images are at {generated.pixel_scale_arcsec:g} arcsec/px, real ones at "
                         f"{train.pixel_scale_arcsec:g}: their sources would enter at another angular scale")
    if generated.class_names != train.class_names:
        raise ValueError(f"generated classes {list(generated.class_names)} differ from the real ones {list(train.class_names)}")
    if len(generated) == 0:
        return train
    return ImageSet(
        images=torch.cat([train.images, generated.images]),
        labels=torch.cat([train.labels, generated.labels]),
        ra=np.concatenate([train.ra, generated.ra]),
        dec=np.concatenate([train.dec, generated.dec]),
        source=np.concatenate([train.source, generated.source]),
        fingerprint=f"{train.fingerprint}+{generated.fingerprint}",
        pixel_scale_arcsec=train.pixel_scale_arcsec,
        class_names=train.class_names,
    )
