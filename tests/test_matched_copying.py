"""Generator closeness at matched sample size, and the copying test's positive and negative controls."""

import numpy as np
import pytest

from classifier.copying import copying_test, dihedral, nearest
from classifier.matched import MatchedSettings, matched
from classifier.quality import Evaluated, feature_fid

NAMES = ["FRI", "FRII"]


def _features(n_per_class: int, rng: np.random.Generator, shift: float = 0.0, dim: int = 8) -> Evaluated:
    labels = np.repeat(np.arange(len(NAMES)), n_per_class)
    features = rng.normal(size=(labels.size, dim)) + labels[:, None] + shift
    return Evaluated(np.zeros((labels.size, 2, 2), dtype=np.uint8), labels, features)


def test_sets_of_one_distribution_at_400_and_100_images_are_at_the_floor():
    """The generated images are a draw of the reference's own distribution: at matched size they sit
    at the floor; compared at 400 against a floor of 100 (the old way) they look better than real."""
    rng = np.random.default_rng(0)
    reference, generated, unseen = _features(600, rng), _features(400, rng), _features(200, rng)
    result = matched(reference, generated, unseen, NAMES, MatchedSettings(size=100, draws=10))
    for name in NAMES:
        assert result[name]["verdict"] == "at the floor" and result[name]["size"] == 100
        assert 0.7 < result[name]["fid_ratio"] < 1.4
    ref, floor_set = reference.of_class(0).features, unseen.of_class(0).features[:100]
    old = feature_fid(ref, generated.of_class(0).features) / feature_fid(ref, floor_set)
    assert old < 0.75  # 400 generated against a floor of 100 real: the larger set looks closer than real


def test_a_shifted_distribution_is_above_the_floor():
    rng = np.random.default_rng(1)
    reference, unseen = _features(600, rng), _features(100, rng)
    shifted = _features(400, rng, shift=1.0)
    result = matched(reference, shifted, unseen, NAMES, MatchedSettings(size=100, draws=10))
    assert all(result[n]["verdict"] == "above the floor" and result[n]["fid_ratio"] > 2 for n in NAMES)


def test_matched_scores_need_two_images_of_each_set():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="class FRI: 1 generated"):
        matched(_features(50, rng), _features(1, rng), _features(20, rng), NAMES, MatchedSettings())


def _images(n_per_class: int, rng: np.random.Generator, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Sources: one to three Gaussian blobs at random places on a noisy floor, class = blob width."""
    labels = np.repeat(np.arange(len(NAMES)), n_per_class)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(20, 4, size=(labels.size, size, size))
    for i, label in enumerate(labels):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(2, size - 2, 2)
            images[i] += rng.uniform(100, 230) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (1 + label) ** 2))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def _pooled(images: np.ndarray) -> np.ndarray:
    """A stand-in feature extractor: 4x4 mean pooling."""
    n, h, w = images.shape
    return images.reshape(n, h // 4, 4, w // 4, 4).mean((2, 4)).reshape(n, -1) / 255.0


def _transformed_copies(train: np.ndarray, labels: np.ndarray, n_per_class: int, rng, noise: int = 0):
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == c), n_per_class, replace=False)
                             for c in range(len(NAMES))])
    copies = dihedral(train[picked]).reshape(8, len(picked), *train.shape[1:])[rng.integers(0, 8, len(picked)),
                                                                                 np.arange(len(picked))]
    copies = np.clip(copies.astype(int) + rng.integers(-noise, noise + 1, copies.shape), 0, 255).astype(np.uint8)
    return copies, labels[picked]


@pytest.mark.parametrize("noise", [0, 3])
def test_rotated_and_flipped_copies_of_training_images_are_flagged(noise):
    """Positive controls: training images rotated/flipped, exactly or with noise of a few grey levels."""
    rng = np.random.default_rng(3)
    train, train_labels = _images(80, rng)
    unseen, unseen_labels = _images(50, rng)
    copies, copy_labels = _transformed_copies(train, train_labels, 40, rng, noise)
    result = copying_test(train, train_labels, copies, copy_labels, unseen, unseen_labels, NAMES, _pooled)
    for name in NAMES:
        assert result[name]["suspected"], result[name]
        assert result[name]["pixels"]["near_copy_share"] > 0.9 and result[name]["pixels"]["mann_whitney_p"] < 1e-6
        assert result[name]["pixels"]["median_ratio"] < 0.5 and result[name]["pixels"]["c_t"] < -3
        assert result[name]["n_training"] == 80 and len(result[name]["closest"]["generated"]) == 4


def test_unseen_real_images_are_not_flagged():
    """The negative control: new draws of the same sources are no closer than the unseen images."""
    rng = np.random.default_rng(4)
    train, train_labels = _images(80, rng)
    unseen, unseen_labels = _images(50, rng)
    fresh, fresh_labels = _images(50, rng)
    result = copying_test(train, train_labels, fresh, fresh_labels, unseen, unseen_labels, NAMES, _pooled)
    for name in NAMES:
        assert not result[name]["suspected"], result[name]
        assert 0.8 < result[name]["pixels"]["median_ratio"] < 1.25 and abs(result[name]["pixels"]["c_t"]) < 3


def test_nearest_finds_the_transformed_original():
    rng = np.random.default_rng(5)
    train, _ = _images(10, rng)
    flipped = train[3][::-1, :][None]  # a vertical flip is one of the 8 transforms
    distance, index = nearest(flipped.reshape(1, -1), dihedral(train).reshape(160, -1))
    assert distance[0] == pytest.approx(0) and index[0] % 20 == 3
