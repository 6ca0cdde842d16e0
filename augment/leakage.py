"""Which evaluation images the generator saw during its own training.

A generator trained on images that are later used to test a classifier leaks them into the
classifier's training set (its samples can copy them), and the measured gain is then partly
memorisation. The FIRST literature training split, for example, holds 288 of the 400 images
of the cross-validation test set. The images are compared byte for byte after the same
preprocessing (the evaluation's crop and resolution, whatever the generator was trained at),
so the check depends neither on split names nor on the generator's own crop.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from wgan.data import DataConfig, ImageSet, load_dataset


def image_hashes(data: ImageSet) -> list[str]:
    return [hashlib.blake2b(image.numpy().tobytes(), digest_size=16).hexdigest() for image in data.images]


def generator_training_set(gen_data: DataConfig, eval_data: DataConfig) -> ImageSet:
    """The generator's training images, preprocessed as the evaluation's images are."""
    return load_dataset(replace(gen_data, crop=eval_data.crop, resolution=eval_data.resolution))


def overlap(seen: set[str], data: ImageSet) -> int:
    """How many images of `data` are among the hashes `seen`."""
    return sum(h in seen for h in image_hashes(data))


def check(gen_data: DataConfig, eval_data: DataConfig, test: ImageSet, valid: ImageSet,
          train: ImageSet | None = None, kept: dict[int, ImageSet] | None = None) -> dict:
    """Raise ValueError when any test image was in the generator's training data; return the
    overlap with the validation split of the fold it is used for (it biases epoch selection, not
    the test score; a per-fold generator sees none). `eval_data` is how `test` and `valid` were loaded.

    With the fold's training split `train` and `kept` (training seed -> the part of it a real
    fraction below 1 keeps) also count, per seed, the dropped training images the generator
    learned from: its samples then carry labelled images the classifiers are denied, and a gain
    can come from them."""
    seen = set(image_hashes(generator_training_set(gen_data, eval_data)))
    in_test = overlap(seen, test)
    if in_test:
        raise ValueError(f"the generator was trained on {in_test} of the {len(test)} test images "
                         f"(its data: {gen_data.source} {gen_data.split} split, fold {gen_data.fold}); "
                         "train it on a cross-validation training split instead")
    out = {"generator_data": {"source": gen_data.source, "split": gen_data.split, "fold": gen_data.fold},
           "test_images_seen": 0,
           "valid_images_seen": overlap(seen, valid)}
    if train is not None and kept:
        seen_in_train = seen & set(image_hashes(train))
        out["dropped_train_images_seen"] = {str(seed): len(seen_in_train - set(image_hashes(subset)))
                                            for seed, subset in kept.items()}
    return out


def combine(checks: list[dict]) -> dict:
    """One fold's `check` results over its generator replicas: the first one's record, with every
    count the largest any replica has (the report then understates no replica's overlap)."""
    out = dict(checks[0])
    out["valid_images_seen"] = max(c["valid_images_seen"] for c in checks)
    if "dropped_train_images_seen" in out:
        out["dropped_train_images_seen"] = {seed: max(c["dropped_train_images_seen"][seed] for c in checks)
                                            for seed in out["dropped_train_images_seen"]}
    return out
