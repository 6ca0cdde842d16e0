"""Counts per class for every mixing mode, the generated pool, and the paired intervals."""

import math

import pytest
import torch

from augment import analysis, mixing, pool
from tests.helpers import synthetic_set, tiny_config, tiny_network
from wgan.networks import Generator
from wgan.sampling import LoadedGenerator

FOLD0 = {"FRI": 316, "FRII": 659, "Compact": 232, "Bent": 198}  # cv fold 0 training split


@pytest.mark.parametrize("spec, expected", [
    (mixing.MixSpec(1.5, "realistic"), [474, 989, 348, 297]),  # 988.5 rounds half up
    (mixing.MixSpec(1.0, "balanced"), [387, 44, 470, 504]),  # all raised to 702.5; .5 remainders by label
    (mixing.MixSpec(0.1, "balanced"), [0, 0, 54, 87]),  # 141 images only reach the two rarest classes
    (mixing.MixSpec(3.0, "balanced"), [1089, 746, 1173, 1207]),  # combined 1405 per class
    (mixing.parse_ratio("FRI=2,Bent=0.5", "balanced"), [632, 0, 0, 99]),
])
def test_generated_counts(spec, expected):
    counts = mixing.generated_counts(FOLD0, spec)
    assert counts == expected
    if spec.mode == "balanced":
        assert sum(counts) == math.floor(spec.ratio * sum(FOLD0.values()) + 0.5)


def test_balanced_mode_balances_the_combined_set():
    combined = [r + g for r, g in zip(FOLD0.values(), mixing.generated_counts(FOLD0, mixing.MixSpec(2.0, "balanced")))]
    assert max(combined) - min(combined) <= 1


@pytest.mark.parametrize("mode", ["balanced", "realistic"])
def test_ratio_zero_adds_nothing_and_leaves_the_real_set_unchanged(mode):
    spec = mixing.MixSpec(0.0, mode)
    assert mixing.generated_counts(FOLD0, spec) == [0, 0, 0, 0] and spec.is_zero
    real = synthetic_set(16)
    real.fingerprint += ":cv/0/train"
    empty = mixing.mix(real, pool.take(synthetic_set(8), [0, 0, 0, 0]))
    assert empty is real


@pytest.mark.parametrize("text, message", [("-1", ">= 0"), ("nan", "finite"), ("inf", "finite"),
                                           ("FRI=x", "not a number"),
                                           ("FRI=2,FRI=3", "class FRI is given twice")])
def test_bad_ratios_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        mixing.parse_ratio(text, "balanced")


def test_per_class_ratios_name_the_data_s_own_classes():
    two = {"FRI": 10, "FRII": 30}  # a 2-class survey
    assert mixing.generated_counts(two, mixing.parse_ratio("FRI=2", "balanced")) == [20, 0]
    assert mixing.generated_counts(two, mixing.MixSpec(1.0, "balanced")) == [30, 10]
    with pytest.raises(ValueError, match="unknown class Bent .*the data's classes are FRI, FRII"):
        mixing.generated_counts(two, mixing.parse_ratio("Bent=2", "balanced"))


@pytest.mark.parametrize("subset", ["valid", "test"])
def test_generated_images_cannot_join_validation_or_test(subset):
    data = synthetic_set(8)
    data.fingerprint += f":cv/0/{subset}"
    with pytest.raises(ValueError, match="only a training split"):
        mixing.mix(data, synthetic_set(4))


def test_real_fraction_is_stratified_and_seeded():
    data = synthetic_set(40)
    data.fingerprint += ":cv/0/train"
    a, b = mixing.real_fraction(data, 0.25, 3), mixing.real_fraction(data, 0.25, 3)
    assert list(a.class_counts().values()) == [3, 3, 3, 3]  # 10 per class: 2.5 rounds half up
    assert torch.equal(a.images, b.images)
    assert mixing.real_fraction(data, 1.0, 0) is data


def tiny_generator() -> LoadedGenerator:
    torch.manual_seed(0)
    model = Generator(tiny_network(16)).eval().requires_grad_(False)
    return LoadedGenerator(model, ["FRI", "FRII", "Compact", "Bent"], 1.8, "f" * 64, 0.0, tiny_config())


def test_pool_is_deterministic_and_a_bigger_pool_extends_a_smaller_one(cache_dir):
    gen = tiny_generator()
    small, big = pool.draw(gen, [2, 1, 0, 3], seed=1), pool.draw(gen, [4, 2, 1, 3], seed=1)
    assert small.class_counts() == {"FRI": 2, "FRII": 1, "Compact": 0, "Bent": 3}
    assert torch.equal(pool.take(big, [2, 1, 0, 3]).images, small.images)
    assert torch.equal(pool.draw(gen, [2, 1, 0, 3], seed=1).images, small.images)  # from the cache
    other_seed = pool.draw(gen, [2, 1, 0, 3], seed=2)
    assert not torch.equal(other_seed.images, small.images)
    assert (small.source == "generated").all()


def test_paired_interval_against_a_hand_computed_example():
    # differences .01 .03 .02 .04: mean .025, sd .0129099, t(.975, 3) = 3.182446
    g = analysis.paired_interval([0.01, 0.03, 0.02, 0.04])
    half = 3.182446 * 0.0129099 / 2
    assert g["mean"] == pytest.approx(0.025)
    assert g["low"] == pytest.approx(0.025 - half, abs=1e-6) and g["high"] == pytest.approx(0.025 + half, abs=1e-6)
    assert g["significant"]
    assert not analysis.paired_interval([0.01, -0.01])["significant"]
    single = analysis.paired_interval([0.05])
    assert math.isnan(single["low"]) and not single["significant"]
