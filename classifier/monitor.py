"""Periodic generator quality during wgan-train: a callback for wgan.training_loop.train."""

from __future__ import annotations

import numpy as np

from wgan.data import ImageSet

from .distances import kernel_inception_distance
from .evaluate_generator import check_extractor, sample_images
from .export import LoadedClassifier
from .matched import over_draws
from .quality import Evaluated, class_fidelity, feature_fid, featurize

BEST_METRIC = "Metrics/kid_class_mean"  # lower is better; picks generator-best.pt
FLOOR_DRAWS = 5


class PeriodicQuality:
    """Every `every` generator iterations: KID, FID and class fidelity per class of `n_per_class`
    EMA samples (fixed seeds) against the real training images, in the extractor's feature space.
    With `unseen` real images (the validation and test splits), also the floor at matched size:
    per class, FID and KID of as many unseen images as there are (at most `n_per_class`), averaged
    over FLOOR_DRAWS draws and computed once, and the generated FID at that same size, so the
    TensorBoard curves compare like with like. `reference` is at the extractor's resolution
    (evaluate_generator.scoring_data); a finer generator's samples are area-downsampled to it."""

    def __init__(self, extractor: LoadedClassifier, reference: ImageSet, every: int, n_per_class: int = 200,
                 kid_subset: int = 100, seed: int = 0, tstr_epochs: int = 0, unseen: list[ImageSet] | None = None):
        check_extractor(extractor, list(reference.class_names))
        if extractor.resolution != reference.resolution:
            raise ValueError(f"extractor works at {extractor.resolution} px but the data is {reference.resolution} px")
        self.extractor, self.every, self.n_per_class = extractor, every, n_per_class
        self.kid_subset, self.seed, self.tstr_epochs = kid_subset, seed, tstr_epochs
        self.real = reference
        self.reference = featurize(extractor, reference.images, reference.labels, cache_tag=reference.fingerprint)
        self.floor = self._floor(unseen) if unseen else {}

    def __call__(self, step: int, state) -> dict[str, float] | None:
        if step % self.every:
            return None
        images, labels = sample_images(state.ema.model, self.n_per_class, self.seed, self.real.resolution)
        generated: Evaluated = featurize(self.extractor, images, labels)
        stats: dict[str, float] = {}
        for c, name in enumerate(self.real.class_names):
            real, fake = self.reference.of_class(c).features, generated.of_class(c).features
            stats[f"Metrics/kid_{name}"] = kernel_inception_distance(real, fake, subset_size=self.kid_subset)[0]
            stats[f"Metrics/fid_{name}"] = feature_fid(real, fake)
        for c, name in enumerate(self.real.class_names):
            if name in self.floor:  # generated at the floor's size: the first images of the class (fixed seeds)
                size, floor = self.floor[name]["size"], self.floor[name]
                fake = generated.of_class(c).features[:size]
                stats[f"Metrics/fid_matched_{name}"] = feature_fid(self.reference.of_class(c).features, fake)
                stats[f"Metrics/fid_floor_{name}"], stats[f"Metrics/kid_floor_{name}"] = floor["fid"], floor["kid"]
        for name, share in class_fidelity(self.extractor, generated, list(self.real.class_names)).items():
            stats[f"Metrics/fidelity_{name}"] = share
        if self.tstr_epochs:
            stats |= self._usefulness(images, labels)
        stats[BEST_METRIC] = float(np.mean([stats[f"Metrics/kid_{n}"] for n in self.real.class_names]))
        stats["Metrics/fid_class_mean"] = float(np.mean([stats[f"Metrics/fid_{n}"] for n in self.real.class_names]))
        return stats

    def _floor(self, unseen: list[ImageSet]) -> dict[str, dict]:
        """Per class: FID and KID of `size` unseen real images against the training images, the
        mean over FLOOR_DRAWS draws (seeded), size = min(n_per_class, unseen images of the class)."""
        parts = [featurize(self.extractor, s.images, s.labels, cache_tag=s.fingerprint) for s in unseen]
        pooled = Evaluated(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("images", "labels", "features")))
        rng = np.random.default_rng(self.seed)
        out = {}
        for c, name in enumerate(self.real.class_names):
            pool = pooled.of_class(c)
            size = min(self.n_per_class, len(pool.labels))
            if size < 2:
                continue
            scores = over_draws(self.reference.of_class(c), pool, size, FLOOR_DRAWS, rng, self.kid_subset)
            out[name] = {"size": size, "fid": scores["fid"]["mean"], "kid": scores["kid"]["mean"]}
        return out

    def _usefulness(self, images, labels) -> dict[str, float]:
        """Per-class F1 on the real *training* images of the baseline CNN trained on these generated
        images only (its epoch picked on the same training images): a usefulness score that no
        validation or test image enters, so checkpoints can be chosen on it."""
        import torch

        from wgan.data import generated_set

        from .engine import TrainSettings, evaluate, fit
        from .models import build_model

        device = next(self.extractor.model.parameters()).device
        synthetic = generated_set(images, labels, "periodic-usefulness", self.real.pixel_scale_arcsec,
                                  self.real.class_names)
        settings = TrainSettings(epochs=self.tstr_epochs, class_weighted=True, seed=self.seed)
        # build_model seeds the global generator: keep the GAN's random state as it was
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            model = build_model(settings.model, self.real.resolution, len(self.real.class_names), seed=self.seed)
            result = fit(model, synthetic, self.real, settings, device, progress=False)
        report = evaluate(result.model, self.real, device)
        return {f"Metrics/tstr_{c}": report["per_class"][c]["f1"] for c in self.real.class_names}
