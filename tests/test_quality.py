import numpy as np
import pytest

from classifier.astro import compare_statistics, image_statistics, relative_mae
from classifier.distances import frechet_distance, kernel_inception_distance, precision_recall
from classifier.features import FeatureStats, extract_features
from classifier.models import build_model
from tests.helpers import synthetic_set


def stats_of(x):
    s = FeatureStats(x.shape[1])
    s.update(x)
    return s.mean, s.cov


def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 16))
    assert frechet_distance(*stats_of(x), *stats_of(x)) == pytest.approx(0, abs=1e-8)


def test_frechet_mean_shift_gives_squared_norm():
    x = np.random.default_rng(1).normal(size=(200, 8))
    d = np.linspace(-1, 2, 8)
    assert frechet_distance(*stats_of(x), *stats_of(x + d)) == pytest.approx(np.sum(d**2), rel=1e-8)


def test_frechet_matches_closed_form_for_gaussians():
    """For diagonal covariances FD = |dmu|^2 + sum (s1 - s2)^2 (s = standard deviations)."""
    mu1, mu2 = np.zeros(5), np.arange(5.0)
    s1, s2 = np.array([1, 2, 3, 0.5, 1.0]), np.array([2, 2, 1, 0.5, 3.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(expected)
    # and for a full covariance against scipy's general matrix square root
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = a @ a.T, b @ b.T
    reference = np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_distance(mu1[:1].repeat(6), c1, mu1[:1].repeat(6), c2) == pytest.approx(reference, rel=1e-6)


def test_frechet_is_finite_for_singular_covariances():
    x = np.random.default_rng(3).normal(size=(5, 50))  # fewer samples than dimensions
    value = frechet_distance(*stats_of(x), *stats_of(x[::-1] * 1.5))
    assert np.isfinite(value) and value >= 0


def test_feature_stats_batch_independent():
    x = np.random.default_rng(4).normal(size=(100, 4))
    s = FeatureStats(4)
    for chunk in np.array_split(x, 7):
        s.update(chunk)
    assert np.allclose(s.mean, x.mean(0)) and np.allclose(s.cov, np.cov(x, rowvar=False))


def test_kid_unbiased_and_detects_shift():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(400, 10)), rng.normal(size=(400, 10))
    same, _ = kernel_inception_distance(x, y, subsets=100, subset_size=100)
    shifted, _ = kernel_inception_distance(x, y + 1.0, subsets=100, subset_size=100)
    assert abs(same) < 0.05 and shifted > 1.0


def test_precision_recall_extremes():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 5))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    collapsed = np.repeat(real[:1], 200, axis=0)  # one mode only: precise, no recall
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.2


def test_features_batch_size_independent():
    model = build_model("cnn", 32, seed=0)
    images = synthetic_set(20, 32).images
    a, b = extract_features(model, images, batch_size=20), extract_features(model, images, batch_size=3)
    assert a.shape == (20, 100) and np.allclose(a, b, atol=1e-6)


def test_image_statistics_on_a_known_image():
    image = np.zeros((1, 16, 16), dtype=np.uint8)
    image[0, 4:6, 2:12] = 200  # a 2 x 10 bar
    image[0, 12, 12] = 10  # a separate faint pixel
    stats = image_statistics(image)
    assert stats["activated_pixels"][0] == 21 and stats["intensity_sum"][0] == 20 * 200 + 10
    assert stats["components"][0] == 2 and stats["largest_area"][0] == 20
    assert stats["elongation"][0] > 0.7 and stats["major_axis"][0] > 9


def test_comparison_zero_for_identical_sets_and_positive_otherwise():
    images = synthetic_set(16, 32).images.numpy()
    same = compare_statistics(image_statistics(images), image_statistics(images))
    assert all(v["wasserstein"] == 0 and v["relative_mae"] == 0 for v in same.values())
    brighter = compare_statistics(image_statistics(images), image_statistics(np.clip(images.astype(int) * 2, 0, 255).astype(np.uint8)))
    assert brighter["intensity_sum"]["wasserstein"] > 0 and relative_mae(np.zeros(5), np.ones(5)) == pytest.approx(2.0)


def test_reference_features_are_cached_under_data_and_extractor(tmp_path, monkeypatch):
    import classifier.quality as quality
    from classifier.export import LoadedClassifier

    monkeypatch.setenv("RADIOGAN_CACHE", str(tmp_path))
    data = synthetic_set(12, 32)
    extractor = LoadedClassifier(build_model("cnn", 32, seed=0), "cnn", 32, ["FRI", "FRII", "Compact", "Bent"], {}, "hash-a")
    calls = []
    real_extract = quality.extract_features
    monkeypatch.setattr(quality, "extract_features", lambda *a, **k: calls.append(1) or real_extract(*a, **k))
    first = quality.featurize(extractor, data.images, data.labels, cache_tag=data.fingerprint)
    again = quality.featurize(extractor, data.images, data.labels, cache_tag=data.fingerprint)
    assert len(calls) == 1 and np.array_equal(first.features, again.features)
    quality.featurize(extractor, data.images, data.labels, cache_tag=data.fingerprint + "-other-split")
    extractor.file_hash = "hash-b"
    quality.featurize(extractor, data.images, data.labels, cache_tag=data.fingerprint)
    quality.featurize(extractor, data.images, data.labels)  # generated images: never cached
    assert len(calls) == 4 and len(list(tmp_path.glob("*.npz"))) == 3


def test_kid_of_sets_of_different_sizes_is_the_unbiased_mmd_of_the_subsets_it_draws():
    """KID draws each subset from its own set: with sets of 30 and 50 and subsets of 20, every
    draw indexes its own set (a subset drawn with the other set's size would miss or overrun)."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(50, 4)) + 0.5
    value, _ = kernel_inception_distance(x, y, subsets=3, subset_size=20, seed=11)
    draw, expected = np.random.default_rng(11), []
    for _ in range(3):
        a, b = x[draw.choice(30, 20, replace=False)], y[draw.choice(50, 20, replace=False)]
        k = lambda u, v: (u @ v.T / 4 + 1) ** 3  # noqa: E731
        off = ~np.eye(20, dtype=bool)
        expected.append(k(a, a)[off].mean() + k(b, b)[off].mean() - 2 * k(a, b).mean())
    assert value == pytest.approx(np.mean(expected), rel=1e-12)
    assert kernel_inception_distance(y, x, subsets=3, subset_size=20, seed=11)[0] != value  # the order of draws
    with pytest.raises(ValueError, match="^KID needs at least 2 samples in each set$"):
        kernel_inception_distance(x[:1], y)
    assert np.isfinite(kernel_inception_distance(x[:2], y[:2], subsets=1)[0])  # two are enough
    # a subset larger than the smaller set: both subsets take the smaller set's size
    small, _ = kernel_inception_distance(x[:10], y, subsets=2, subset_size=100, seed=1)
    assert np.isfinite(small) and small == kernel_inception_distance(x[:10], y, subsets=2, subset_size=10, seed=1)[0]
    assert kernel_inception_distance(y, x[:10], subsets=2, subset_size=100, seed=1)[0] == \
        kernel_inception_distance(y, x[:10], subsets=2, subset_size=10, seed=1)[0]


def test_the_documented_estimators_are_the_defaults():
    """The scores the docs report are KID over 50 subsets of 100 (seed 0) and precision/recall
    with k=3; the matched scores call them with those defaults."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(120, 4)), rng.normal(size=(130, 4)) + 0.2
    assert kernel_inception_distance(x, y) == kernel_inception_distance(x, y, subsets=50, subset_size=100, seed=0)
    assert precision_recall(x, y) == precision_recall(x, y, k=3) != precision_recall(x, y, k=4)


@pytest.mark.parametrize("k, expected", [(1, (2 / 3, 2 / 3)), (2, (1.0, 1.0)), (3, (1.0, 1.0))])
def test_precision_and_recall_on_a_hand_computed_example(k, expected):
    """On a line, real at 0, 1, 2 and generated at 0.5, 0.6, 4. Each point's ball reaches its k-th
    nearest neighbour in its own set: real radii 1, 1, 1 (k=1) and 2, 1, 2 (k=2); generated
    0.1, 0.1, 3.4 (k=1) and 3.5, 3.4, 3.5 (k=2). Precision (generated inside a real ball): 4 is
    2 from the point 2, outside at k=1, on the edge at k=2. Recall (real inside a generated ball):
    0 is 0.5 from 0.5 and 4 from 4, outside at k=1; every real point is inside at k=2. With three
    points a set has no third neighbour: k=3 is capped at the farthest (k=2 here)."""
    real = np.array([[0.0], [1.0], [2.0]])
    fake = np.array([[0.5], [0.6], [4.0]])
    assert precision_recall(real, fake, k=k) == pytest.approx(expected)
