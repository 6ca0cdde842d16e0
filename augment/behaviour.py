"""Behavioural tests of a trained classifier: per-class numbers and pass/fail against a threshold.

- invariance: the 8 rotations/flips of the square must not change the predicted class;
- survey shift: the test images re-imaged as a survey with a larger beam and more noise would
  see them (`reimage`), or a folder of real cutouts from another survey;
- minimum functionality: unambiguous synthetic sources (an unresolved point source is Compact,
  two symmetric edge-brightened lobes are FRII).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import ndimage

from classifier.engine import predict
from wgan.data import ImageSet
from wgan.data.symmetry import dihedral

FIRST_BEAM_ARCSEC = 5.0
FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


@dataclass
class BehaviourResult:
    name: str
    value: float  # the number compared with the threshold
    threshold: float
    passed: bool
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, class_names) -> dict[str, float]:
    return {name: float((predicted[labels == c] == c).mean()) if (labels == c).any() else math.nan
            for c, name in enumerate(class_names)}


def invariance(model, data: ImageSet, device: torch.device, threshold: float = 0.9) -> BehaviourResult:
    """Share of images whose predicted class is the same in all 8 orientations (passes at >=
    threshold), and accuracy in each orientation, per class."""
    views = torch.stack([predict(model, dihedral(data.images[:, None], v)[:, 0], device).argmax(1)
                         for v in range(8)]).numpy()  # [8, N]
    labels = data.labels.numpy()
    consistent = (views == views[:1]).all(0)
    per_class = {name: {"consistency": float(consistent[labels == c].mean()),
                        "accuracy": float((views[:, labels == c] == c).mean())}
                 for c, name in enumerate(data.class_names) if (labels == c).any()}
    value = float(consistent.mean())
    return BehaviourResult("invariance", value, threshold, value >= threshold, per_class,
                           {"accuracy_per_view": [float((v == labels).mean()) for v in views]})


def reimage(images: torch.Tensor, pixel_scale_arcsec: float, beam_arcsec: float, snr: float, seed: int = 0,
            clip_sigma: float = 3.0) -> torch.Tensor:
    """uint8 images as a survey with a `beam_arcsec` Gaussian beam and peak signal-to-noise `snr`
    would see them: convolve with the kernel that takes FIRST's 5 arcsec beam to the new one, add
    Gaussian noise of peak/snr, set pixels below clip_sigma noise levels to 0 and rescale the
    maximum to 255, as the FIRST cutouts were prepared."""
    if beam_arcsec < FIRST_BEAM_ARCSEC:
        raise ValueError(f"beam {beam_arcsec} arcsec is sharper than FIRST's {FIRST_BEAM_ARCSEC}")
    sigma_px = math.sqrt(beam_arcsec**2 - FIRST_BEAM_ARCSEC**2) / FWHM_PER_SIGMA / pixel_scale_arcsec
    rng = np.random.default_rng(seed)
    out = np.empty(images.shape, dtype=np.uint8)
    for i, image in enumerate(images.numpy().astype(np.float64)):
        smooth = ndimage.gaussian_filter(image, sigma_px, mode="constant") if sigma_px > 0 else image
        noise = smooth.max() / snr if smooth.max() > 0 else 1.0
        noisy = smooth + rng.normal(0, noise, smooth.shape)
        noisy[noisy < clip_sigma * noise] = 0
        peak = noisy.max()
        out[i] = np.round(noisy * (255 / peak)).astype(np.uint8) if peak > 0 else 0
    return torch.from_numpy(out)


def survey_shift(model, data: ImageSet, device: torch.device, beam_arcsec: float, snr: float,
                 max_drop: float = 0.15, seed: int = 0) -> BehaviourResult:
    """Accuracy on the re-imaged test set; passes when it falls by at most `max_drop`."""
    labels = data.labels.numpy()
    before = predict(model, data.images, device).argmax(1).numpy()
    shifted = reimage(data.images, data.pixel_scale_arcsec, beam_arcsec, snr, seed)
    after = predict(model, shifted, device).argmax(1).numpy()
    drop = float((before == labels).mean() - (after == labels).mean())
    per_class = {name: {"recall_before": b, "recall_after": a}
                 for (name, b), a in zip(_per_class_accuracy(before, labels, data.class_names).items(),
                                         _per_class_accuracy(after, labels, data.class_names).values())}
    return BehaviourResult(f"survey shift {beam_arcsec:g}\" beam, S/N {snr:g}", drop, max_drop, drop <= max_drop,
                           per_class, {"accuracy_before": float((before == labels).mean()),
                                       "accuracy_after": float((after == labels).mean())})


def other_survey(model, data: ImageSet, class_names: tuple[str, ...], device: torch.device,
                 min_accuracy: float = 0.6) -> BehaviourResult:
    """Accuracy on real cutouts from another survey (a class folder, matched to the model's
    `class_names` by name: the folder may hold only some of them); passes at >= min_accuracy."""
    unknown = sorted(set(data.class_names) - set(class_names))
    if unknown:
        raise ValueError(f"the other survey's classes {', '.join(unknown)} are not among the classifier's "
                         f"({', '.join(class_names)})")
    labels = np.asarray([class_names.index(data.class_names[c]) for c in data.labels.tolist()], dtype=np.int64)
    predicted = predict(model, data.images, device).argmax(1).numpy()
    value = float((predicted == labels).mean())
    return BehaviourResult("other survey", value, min_accuracy, value >= min_accuracy,
                           {k: {"recall": v} for k, v in _per_class_accuracy(predicted, labels, class_names).items()
                            if not math.isnan(v)},
                           {"n": len(labels), "data": data.fingerprint})


# the classes synthetic_sources draws; the minimum-functionality test needs a classifier that has them
SYNTHETIC_CLASSES = ("Compact", "FRII")


def synthetic_sources(resolution: int, pixel_scale_arcsec: float, class_names: tuple[str, ...], n: int = 16,
                      seed: int = 0) -> ImageSet:
    """n unresolved point sources (Compact) and n FRII doubles: two lobes, brightest at their outer
    ends, symmetric about the centre, at random orientation, separation and brightness."""
    from wgan.data import generated_set

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:resolution, :resolution] - (resolution - 1) / 2
    beam = FIRST_BEAM_ARCSEC / FWHM_PER_SIGMA / pixel_scale_arcsec  # sigma in pixels
    images, labels = [], []
    for _ in range(n):
        dx, dy = rng.uniform(-1, 1, 2)
        images.append(np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / (2 * beam**2)))
        labels.append(class_names.index("Compact"))
    for _ in range(n):
        angle, half = rng.uniform(0, np.pi), rng.uniform(0.2, 0.35) * resolution
        ux, uy = np.cos(angle), np.sin(angle)
        image = np.zeros_like(xx)
        for sign in (-1, 1):
            for t, weight in ((0.6, 0.35), (0.8, 0.6), (1.0, 1.0)):  # brightest at the outer edge
                cx, cy = sign * t * half * ux, sign * t * half * uy
                image += weight * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (1.5 * beam) ** 2))
        images.append(image)
        labels.append(class_names.index("FRII"))
    stack = np.stack([np.round(255 * i / i.max()) for i in images]).astype(np.uint8)
    return generated_set(torch.from_numpy(stack), torch.tensor(labels), f"synthetic-sources-{seed}", pixel_scale_arcsec,
                         tuple(class_names))


def minimum_functionality(model, resolution: int, pixel_scale_arcsec: float, class_names: tuple[str, ...],
                          device: torch.device, min_accuracy: float = 0.9) -> BehaviourResult:
    """Accuracy on `synthetic_sources`, per case; passes when every case reaches min_accuracy."""
    cases = synthetic_sources(resolution, pixel_scale_arcsec, class_names)
    predicted = predict(model, cases.images, device).argmax(1).numpy()
    labels = cases.labels.numpy()
    per_class = {name: {"accuracy": acc} for name, acc in _per_class_accuracy(predicted, labels, class_names).items()
                 if not math.isnan(acc)}
    value = min(v["accuracy"] for v in per_class.values())
    return BehaviourResult("minimum functionality", value, min_accuracy, value >= min_accuracy, per_class,
                           {"cases": {"Compact": "unresolved point source", "FRII": "two symmetric edge-brightened lobes"}})
