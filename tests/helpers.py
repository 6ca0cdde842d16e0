"""Small synthetic inputs shared by the tests."""

from __future__ import annotations

import contextlib
import os

import h5py
import numpy as np
import pytest
import torch

from classifier.metrics import classification_report
from wgan.config import OptimConfig, TrainConfig
from wgan.data import ImageSet
from wgan.data.schema import write_group
from wgan.device import torch_threads
from wgan.networks import NetworkConfig


@contextlib.contextmanager
def other_thread_count(n: int):
    """Run a block with `n` torch threads, then restore the count. Skipped under mutmut, which
    forks a child per mutant: GNU OpenMP's thread pool does not survive a fork, so once the parent
    has run OpenMP with several threads a child that asks for several waits forever at its first
    parallel kernel (seen on 2026-12-06 with this module's tests in mutmut's selection)."""
    if "MUTANT_UNDER_TEST" in os.environ:
        pytest.skip("changes the torch thread count, which a forked mutmut child cannot (OpenMP after fork)")
    with torch_threads(n):
        yield


def tiny_network(resolution: int = 16) -> NetworkConfig:
    return NetworkConfig(resolution=resolution, base_channels=8, max_channels=32)


def synthetic_set(n: int = 48, size: int = 16, seed: int = 0) -> ImageSet:
    """Blobs on a floor of 0, labels cycling over the 4 classes."""
    gen = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = gen.uniform(size * 0.3, size * 0.7, 2)
        images[i] = np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (1 + i % 4)), 0, 255)
    return ImageSet(
        images=torch.from_numpy(images),
        labels=torch.arange(n) % 4,
        ra=np.zeros(n),
        dec=np.zeros(n),
        source=np.full(n, "synthetic"),
        fingerprint=f"synthetic-{n}-{size}-{seed}",
        pixel_scale_arcsec=1.8,
    )


def tiny_config(**overrides) -> TrainConfig:
    cfg = TrainConfig(network=tiny_network(), batch_size=8, n_critic=2, iters=6, log_every=2,
                      sample_every=3, checkpoint_every=2, seed=1, optim=OptimConfig(lr_g=1e-4, lr_d=1e-4))
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


CLASSES = ("FRI", "FRII", "Compact", "Bent")


def scored_report(correct: np.ndarray, n_classes: int = 4) -> dict:
    """A cell's test report over len(correct) images (classes in turn): image i right where
    correct[i], else called the next class."""
    labels = np.arange(correct.size) % n_classes
    predicted = np.where(correct, labels, (labels + 1) % n_classes)
    report = classification_report(labels, np.eye(n_classes)[predicted], list(CLASSES[:n_classes]))
    return report | {"predicted": predicted.tolist(), "labels": labels.tolist()}


def study_cell(arm: str, fold: int, accuracy: float, failure: str | None = None, seed: int = 0,
               n_images: int = 400) -> dict:
    """An augment-eval cell whose run gets the first round(accuracy * n) images of one fixed order
    right: a better run gets right every image a worse one does (little image-level noise)."""
    order = np.random.default_rng(0).permutation(n_images)
    correct = np.zeros(n_images, dtype=bool)
    correct[order[: round(accuracy * n_images)]] = True
    return {"arm": arm, "fold": fold, "seed": seed, "failure": failure, "test": scored_report(correct)}


def synthetic_h5(path, size: int = 32):
    """A FIRST-schema .h5 of synthetic blobs: 96 train, 48 valid and 48 test images."""
    with h5py.File(path, "w") as h5:
        index = 0
        for split, n, seed in (("train", 96, 0), ("valid", 48, 1), ("test", 48, 2)):
            data = synthetic_set(n, size, seed=seed)
            for image, label in zip(data.images.numpy(), data.labels.tolist()):
                write_group(h5, index, image, label, source="synthetic", split=split)
                index += 1
    return path
