"""Counts per class for every mixing mode, the generated pool, and the paired intervals."""

import math

import numpy as np
import pytest
import torch

from augment import analysis, mixing, pool, report
from tests.helpers import study_cell, synthetic_set, tiny_config, tiny_network
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


_cell = study_cell


@pytest.mark.parametrize("arm, control, verdict", [
    # a gain that shuffled labels give as well is regularisation
    ([0.82, 0.83, 0.84, 0.83], [0.83, 0.82, 0.84, 0.84], "regularisation, not realism"),
    # a gain the control does not have comes from the generated classes
    ([0.82, 0.83, 0.84, 0.83], [0.70, 0.71, 0.69, 0.70], "a gain from the generated images' class information"),
    # a loss, with classes no better than shuffled labels
    ([0.75, 0.76, 0.74, 0.75], [0.76, 0.75, 0.75, 0.74], "do no better than shuffled labels"),
    # a loss, but the classes carry some information
    ([0.75, 0.76, 0.74, 0.75], [0.60, 0.61, 0.62, 0.60], "carry some information"),
])
def test_each_arm_is_judged_against_its_control(arm, control, verdict):
    reference = [0.78, 0.79, 0.80, 0.79]
    cells = [_cell(name, fold, a) for name, values in (("r=0", reference), ("r=1", arm), ("r=1+shuffled-labels", control))
             for fold, a in enumerate(values)]
    summary = analysis.summarize(cells, "r=0")
    judged = analysis.against_controls(cells, summary)
    assert list(judged) == ["r=1"] and judged["r=1"]["control"] == "r=1+shuffled-labels"
    assert verdict in judged["r=1"]["verdict"]
    assert judged["r=1"]["difference"]["accuracy"]["mean"] == pytest.approx(np.mean(arm) - np.mean(control))


def test_failed_pairs_are_left_out_of_the_judgement_but_not_of_the_full_difference():
    cells = [_cell("r=0", f, 0.78 + 0.01 * f) for f in range(4)]
    cells += [_cell("r=1", f, 0.75 + 0.01 * f) for f in range(4)]
    cells += [_cell("r=1+shuffled-labels", f, 0.75 + 0.01 * f + 0.002 * (-1) ** f) for f in range(3)]
    cells.append(_cell("r=1+shuffled-labels", 3, 0.25, failure="collapsed: 100% of test predictions are FRII"))
    judged = analysis.against_controls(cells, analysis.summarize(cells, "r=0"))["r=1"]
    assert judged["difference"]["accuracy"]["n"] == 4 and judged["difference_without_failed"]["accuracy"]["n"] == 3
    assert "do no better than shuffled labels" in judged["verdict"]
    text = report.markdown({"summary": analysis.summarize(cells, "r=0"), "reference_arm": "r=0", "controls": {"r=1": judged},
                            "command": "augment-eval", "config": {"base": {"model": "cnn", "epochs": 1}, "data": {},
                            "schedule": "mixed", "folds": [0], "seeds": [0], "real_fraction": 1, "pool": "fixed",
                            "fidelity_filter": 0}, "mode": "balanced"})
    assert "| r=1 - r=1+shuffled-labels (without failed) | 3 |" in text and "- r=1: no gain over real-only" in text


def test_a_control_that_mostly_fails_is_judged_on_every_pair():
    cells = [_cell("r=0", f, 0.78 + 0.01 * f) for f in range(4)]
    cells += [_cell("r=3", f, 0.72 + 0.01 * f) for f in range(4)]
    cells += [_cell("r=3+shuffled-labels", f, 0.25 + 0.001 * f, failure="collapsed") for f in range(3)]
    cells.append(_cell("r=3+shuffled-labels", 3, 0.70))
    judged = analysis.against_controls(cells, analysis.summarize(cells, "r=0"))["r=3"]
    assert "carry some information" in judged["verdict"]
    assert "judged on all 4 pairs: r=3 failed 0 times, r=3+shuffled-labels failed 3 times" in judged["verdict"]


def test_the_report_names_generators_under_the_working_directory_by_relative_path(tmp_path, monkeypatch):
    """Released generators are found as absolute paths; a committed report named the machine."""
    monkeypatch.chdir(tmp_path)
    cells = [_cell(arm, f, 0.78) for arm in ("r=0", "r=1") for f in range(2)]
    config = {"base": {"model": "cnn", "epochs": 1}, "data": {}, "schedule": "mixed", "folds": [0, 1], "seeds": [0],
              "real_fraction": 1, "pool": "fixed", "fidelity_filter": 0,
              "generators": {"0": str(tmp_path / "checkpoints" / "generator.pt"), "1": "/elsewhere/g.pt"}}
    text = report.markdown({"summary": analysis.summarize(cells, "r=0"), "reference_arm": "r=0", "command": "augment-eval",
                            "config": config, "mode": "balanced", "generator_hashes": {"0": "ab" * 32, "1": "cd" * 32}})
    assert "fold 0 `checkpoints/generator.pt` (abababababab), fold 1 `/elsewhere/g.pt` (cdcdcdcdcdcd)" in text
    pinned = report.markdown({"summary": analysis.summarize(cells, "r=0"), "reference_arm": "r=0", "command": "augment-eval",
                              "config": config, "mode": "balanced", "generator_hashes": {"0": "ab" * 32, "1": "cd" * 32},
                              "generator_releases": {"0": ["first-cv0@abababababab"], "1": [None]}})
    assert "fold 0 `first-cv0@abababababab`, fold 1 `/elsewhere/g.pt` (cdcdcdcdcdcd)" in pinned  # a release by its name


@pytest.mark.parametrize("model, stats, listed", [("cnn", "recalibrated", None), ("resnet", "recalibrated", "recalibrated"),
                                                  ("resnet", "running", "running"), ("resnet", None, "running")])
def test_the_report_lists_the_training_settings(model, stats, listed):
    """Every setting that changes a number, at its value: BatchNorm statistics for a model without
    BatchNorm change none, and a results.json written before the option (None here) ran with the
    running statistics, which the report must say rather than leave the reader today's default."""
    cells = [_cell(arm, f, 0.78) for arm in ("r=0", "r=1") for f in range(2)]
    base = {"model": model, "epochs": 1} | ({} if stats is None else {"batchnorm_stats": stats})
    config = {"base": base, "data": {}, "schedule": "mixed",
              "folds": [0, 1], "seeds": [0], "real_fraction": 1, "pool": "fixed", "fidelity_filter": 0}
    text = report.markdown({"summary": analysis.summarize(cells, "r=0"), "reference_arm": "r=0", "command": "augment-eval",
                            "config": config, "mode": "balanced"})
    assert f'"model": "{model}"' in text
    assert ('"batchnorm_stats"' in text) == (listed is not None)
    assert listed is None or f'"batchnorm_stats": "{listed}"' in text


def test_the_inner_split_holds_out_a_stratified_share_the_same_for_every_seed():
    data = synthetic_set(40)  # 10 images a class
    data.fingerprint += ":cv/0/train"
    learn, pick = mixing.inner_split(data, 0.25)
    assert list(pick.class_counts().values()) == [3, 3, 3, 3]  # 2.5 rounds half up
    assert list(learn.class_counts().values()) == [7, 7, 7, 7]
    held = {bytes(i.numpy()) for i in pick.images}
    assert not held & {bytes(i.numpy()) for i in learn.images} and len(held) + len(learn) == 40
    again = mixing.inner_split(data, 0.25)  # one inner split a fold, whatever the cell's seed
    assert torch.equal(again[1].images, pick.images) and torch.equal(again[0].images, learn.images)
    assert pick.fingerprint.endswith("inner-valid=0.25") and learn.fingerprint.endswith("inner-train=0.25")
    assert list(mixing.inner_split(data, 0.01)[1].class_counts().values()) == [1, 1, 1, 1]  # at least one
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match=f"inner split must be in \\(0, 1\\), got {bad}"):
            mixing.inner_split(data, bad)


def test_mixing_appends_matching_generated_images_and_refuses_the_rest_by_name():
    real = synthetic_set(8)
    real.fingerprint += ":cv/0/train"
    generated = synthetic_set(4, seed=5)
    generated.fingerprint = "generated"
    real.class_names = generated.class_names = ("A", "B", "C", "D")  # a survey's own classes
    generated.source = np.full(4, "generated")
    mixed = mixing.mix(real, generated)
    assert torch.equal(mixed.images, torch.cat([real.images, generated.images])) and len(mixed) == 12
    assert mixed.source.tolist() == ["synthetic"] * 8 + ["generated"] * 4 and len(mixed.ra) == len(mixed.dec) == 12
    assert mixed.pixel_scale_arcsec == real.pixel_scale_arcsec
    assert torch.equal(mixed.labels, torch.cat([real.labels, generated.labels]))
    assert mixed.fingerprint == f"{real.fingerprint}+generated" and mixed.class_names == real.class_names
    assert mixing.mix(real, generated.subset(np.zeros(4, dtype=bool), "none")) is real
    fraction = mixing.real_fraction(real, 0.5, 3)  # a part of the training split takes them too
    assert fraction.fingerprint.endswith(":cv/0/train:real-fraction=0.5/seed=3")
    assert len(mixing.mix(fraction, generated)) == len(fraction) + 4

    other_size = synthetic_set(4, size=32)
    with pytest.raises(ValueError, match=r"^generated images are \(32, 32\), real ones \(16, 16\)$"):
        mixing.mix(real, other_size)
    other_scale = synthetic_set(4)
    other_scale.pixel_scale_arcsec = 3.6
    with pytest.raises(ValueError, match="generated images are at 3.6 arcsec/px, real ones at 1.8"):
        mixing.mix(real, other_scale)
    renamed = synthetic_set(4)
    renamed.class_names = ("W", "X", "Y", "Z")
    with pytest.raises(ValueError, match=r"^generated classes \['W', 'X', 'Y', 'Z'\] differ from the real ones "):
        mixing.mix(real, renamed)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_a_real_fraction_outside_0_to_1_is_refused(fraction):
    with pytest.raises(ValueError, match=rf"^real fraction must be in \(0, 1\], got {fraction}$"):
        mixing.real_fraction(synthetic_set(8), fraction, 0)


def test_a_ratio_keeps_its_mode_and_a_malformed_per_class_ratio_is_named():
    assert mixing.parse_ratio("1.5", "realistic") == mixing.MixSpec(1.5, "realistic")
    with pytest.raises(ValueError, match="^ratio 'FRI=2=3': '2=3' is not a number$"):
        mixing.parse_ratio("FRI=2=3", "balanced")
    with pytest.raises(ValueError, match="^unknown class Blob, Ring in per-class ratio"):
        mixing.check_classes(mixing.parse_ratio("Ring=1,FRI=2,Blob=1", "balanced"), ("FRI", "FRII", "Compact", "Bent"))


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "per-class", "per_class": {"FRI": 1.0, "Bent": -2.0}}, r"^ratios must be finite and >= 0, got 1.0, -2.0$"),
    ({"mode": "per-class", "per_class": {"FRI": math.inf}}, r"^ratios must be finite and >= 0, got inf$"),
    ({"mode": "per-class"}, r"^mode 'per-class' needs at least one CLASS=RATIO$"),
    ({"ratio": 1.0, "mode": "greedy"}, r"^unknown mixing mode 'greedy'; choose from balanced, realistic, per-class$"),
])
def test_a_mix_spec_refuses_what_cannot_be_mixed_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mixing.MixSpec(**kwargs)
    assert mixing.MixSpec(mode="per-class", per_class={"FRI": 0.0}).is_zero  # zero is allowed
