"""Study design options beside the protocol's: per-arm generated images, generator replicas,
cross-validated scoring, and the compute-matched and augmented-real controls."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from augment import mixing
from classifier.engine import TrainSettings
from tests.helpers import synthetic_set
from tests.test_mixing_protocol import ONE_CELL, run
from wgan.data import GENERATED_SOURCE, ImageSet

pytestmark = pytest.mark.usefixtures("one_epoch_references_pass")  # tests/conftest.py


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    from tests.test_augment_eval import make_generator

    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


def _config(generator, **overrides):
    from augment.sweep_config import SweepConfig, build_arms

    base = overrides.pop("base", TrainSettings(epochs=1))
    specs = [mixing.MixSpec(), mixing.MixSpec(0.5), mixing.MixSpec(1.0)]
    return SweepConfig(generators={0: Path(generator)}, arms=build_arms(specs, base, False, "shuffled-labels"),
                       folds=[0], seeds=[0, 1], base=base, **overrides)


def test_each_arm_draws_its_own_generated_images_unless_nested(generator):
    """Per-arm draws: two ratios, two seeds and two bases give other images; a control arm shuffles
    its own arm's images. Nested draws: every arm of a seed starts from the same noise seeds."""
    from augment.pool import pool_seed

    config = _config(generator)
    arms = {arm.name: arm for arm in config.arms}
    seeds = {name: pool_seed(config, arm, 0, 0) for name, arm in arms.items()}
    assert seeds["r=0.5"] != seeds["r=1"] and seeds["r=1"] == seeds["r=1+shuffled-labels"]
    assert pool_seed(config, arms["r=1"], 0, 1) != seeds["r=1"]
    longer = _config(generator, base=TrainSettings(epochs=2))
    assert pool_seed(longer, next(a for a in longer.arms if a.name == "r=1"), 0, 0) != seeds["r=1"]
    assert all(seed >= 4_000_000 for seed in seeds.values()) and seeds == {
        name: pool_seed(config, arm, 0, 0) for name, arm in arms.items()}
    nested = _config(generator, pool_draws="nested")
    assert {pool_seed(nested, arm, 0, 1) for arm in nested.arms} == {1}


def test_per_arm_draws_enter_the_identity_and_nested_ones_keep_the_old_one(generator):
    from augment.reuse import cell_identity

    arm = next(a for a in _config(generator).arms if a.name == "r=1")
    assert cell_identity(_config(generator), arm, 0, 0, "h")["pool_draws"] == "per-arm"
    assert "pool_draws" not in cell_identity(_config(generator, pool_draws="nested"), arm, 0, 0, "h")
    with pytest.raises(ValueError, match="unknown pool draws 'shared'"):
        _config(generator, pool_draws="shared")


def test_generator_replicas_serve_the_seeds_in_turn_and_the_report_shows_each(tmp_path):
    """--checkpoint with {seed}: classifier seed s draws from replica s mod --generator-seeds, the
    cell records which, its identity carries that replica's hash, and the report gives the gain per
    replica."""
    from tests.helpers import tiny_config
    from wgan import checkpoint as ckpt
    from wgan.data import DataConfig, load_dataset
    from wgan.training_loop import train

    paths = []
    for replica in (0, 1):  # two one-iteration generators of fold 0 with other seeds
        cfg = tiny_config(iters=1, seed=replica)
        cfg.network.resolution = 32
        cfg.data = DataConfig(resolution=32, split="cv", fold=0)
        export = train(cfg, load_dataset(cfg.data), tmp_path / f"gen-s{replica}", progress=False)
        paths.append(export)
    pattern = str(tmp_path / "gen-s{seed}" / paths[0].name)
    result = run([*ONE_CELL, "--checkpoint", pattern, "--generator-seeds", "2", "--seeds", "0,1,2"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    for seed, replica in ((0, 0), (1, 1), (2, 0)):
        cell = json.loads((tmp_path / "out" / "cells" / "r=1" / f"fold0-seed{seed}.json").read_text())
        assert cell["generator"]["replica"] == replica and cell["generator"]["replicas"] == 2
        assert cell["identity"]["generator_sha256"] == ckpt.file_hash(paths[replica])
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Accuracy gain per generator replica" in text and "| r=1 |" in text.split("per generator replica")[1]
    assert "fold 0 replica 1 `" in text


def test_inner_split_is_stratified_disjoint_and_the_same_for_every_cell():
    data = synthetic_set(40, size=32)
    data = type(data)(**{**data.__dict__, "fingerprint": "x:cv/0/train"})
    learn, held = mixing.inner_split(data, 0.2)
    assert len(learn) + len(held) == 40 and held.class_counts() == {c: 2 for c in held.class_names}  # 10 a class
    assert not set(map(bytes, learn.images.numpy())) & set(map(bytes, held.images.numpy()))
    again, _ = mixing.inner_split(data, 0.2)
    assert torch.equal(again.images, learn.images) and "/train:" in learn.fingerprint
    with pytest.raises(ValueError, match="inner split must be in"):
        mixing.inner_split(data, 1.0)


def test_cross_validated_scoring_scores_the_validation_split_beside_the_test_set(generator, tmp_path):
    """--inner-split: the epoch is picked on held-out training images, the fold's validation images
    are scored by that model, and the report sets that gain beside the test-set one."""
    result = run([*ONE_CELL, "--checkpoint", generator, "--seeds", "0,1", "--inner-split", "0.2"], tmp_path)
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "cells" / "r=1" / "fold0-seed1.json").read_text())
    assert cell["identity"]["inner_split"] == 0.2 and sum(cell["real_counts"].values()) == 1405 - 281
    assert cell["valid_cv"]["n"] == 353 and cell["test"]["n"] == 400 and len(cell["valid_cv"]["labels"]) == 353
    assert cell["valid_cv"]["images"] != cell["test"]["images"]
    results = json.loads((tmp_path / "results.json").read_text())
    cv = results["summary"]["r=1"]["cross_validated"]
    assert cv["gain_two_way"]["accuracy"]["n"] == 2 and set(cv["gain"]) >= {"accuracy", "Bent/f1"}
    text = (tmp_path / "report.md").read_text()
    assert "Cross-validated gain over `r=0`" in text and "| r=1 | validation (cross-validated) |" in text


def test_the_compute_matched_control_trains_real_images_for_the_arms_total_epochs(generator, tmp_path):
    """--compute-matched beside a fidelity filter with a 2-epoch reference: real only for 1 + 2
    epochs, in the same study, so the filter arm is compared with the same compute on real images."""
    result = run([*ONE_CELL, "--checkpoint", generator, "--fidelity-filter", "0.9", "--reference-epochs", "2",
                  "--compute-matched"], tmp_path)
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "cells" / "real+compute-matched" / "fold0-seed0.json").read_text())
    assert cell["identity"]["overrides"] == {"epochs": 3} and cell["generated_counts"] == {
        "FRI": 0, "FRII": 0, "Compact": 0, "Bent": 0}
    assert "real+compute-matched" in json.loads((tmp_path / "results.json").read_text())["summary"]
    refused = run([*ONE_CELL, "--checkpoint", generator, "--compute-matched"], tmp_path / "plain")
    assert refused.exit_code == 1 and "a compute-matched control needs arms that train more" in refused.output


def _two_class_set() -> ImageSet:
    """Class 0: empty sky (the floor everywhere); class 1: a bright source in the centre."""
    images = torch.zeros(8, 32, 32, dtype=torch.uint8)
    images[4:, 12:20, 12:20] = 200
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    return ImageSet(images=images, labels=labels, ra=np.zeros(8), dec=np.zeros(8), source=np.full(8, "real"),
                    fingerprint="x:cv/0/train", pixel_scale_arcsec=1.8, class_names=("FRI", "FRII"))


def test_augmented_real_images_come_from_their_class_and_keep_the_floor():
    from augment import augmented_real

    real = _two_class_set()
    drawn = augmented_real.draw(real, [3, 5], seed=1)
    assert drawn.labels.tolist() == [0] * 3 + [1] * 5 and (drawn.source == GENERATED_SOURCE).all()
    assert (drawn.images[:3] == 0).all()  # empty sky stays empty: noise only on the source's pixels
    bright = drawn.images[3:].flatten(1)
    assert (bright.max(1).values > 120).all() and ((bright > 0).float().mean(1) < 0.2).all()
    assert torch.equal(augmented_real.draw(real, [3, 5], seed=1).images, drawn.images)
    assert not torch.equal(augmented_real.draw(real, [3, 5], seed=2).images, drawn.images)
    # through a filter that keeps only images brighter than 100 somewhere: class 1 alone passes
    bright_only = lambda images, labels: images.flatten(1).max(1).values > 100  # noqa: E731
    kept = augmented_real.draw_accepted(real, [0, 4], seed=1, accept=bright_only)
    assert kept.labels.tolist() == [1] * 4
    with pytest.raises(ValueError, match="passes too few augmented real FRI"):
        augmented_real.draw_accepted(real, [2, 0], seed=1, accept=bright_only)


def test_the_augmented_real_control_runs_beside_the_arm(generator, tmp_path):
    result = run([*ONE_CELL, "--checkpoint", generator, "--fidelity-filter", "0.9", "--control", "augmented-real",
                  "--control", "shuffled-labels"], tmp_path)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["summary"]) == ["r=0", "r=1", "r=1+augmented-real", "r=1+shuffled-labels"]  # as given
    assert list(results["controls"]["r=1"].values())[0] == "r=1+shuffled-labels"  # the negative control only
    cell = json.loads((tmp_path / "cells" / "r=1+augmented-real" / "fold0-seed0.json").read_text())
    arm = json.loads((tmp_path / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert cell["identity"]["control"] == "augmented-real" and cell["generated_counts"] == arm["generated_counts"]
    refused = run([*ONE_CELL, "--checkpoint", generator, "--pool", "fresh-per-batch", "--control", "augmented-real"],
                  tmp_path / "batch")
    assert refused.exit_code == 1 and "draws its images per pool, not per batch" in refused.output
