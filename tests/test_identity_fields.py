"""Every setting that can change a cell's numbers reaches the cell's identity: a test that walks
every field of the sweep's and the classifier's configs, so a field added later cannot be
forgotten (a forgotten one lets a rerun reuse cells computed under another value)."""

from dataclasses import fields, replace
from pathlib import Path

import pytest

from augment.mixing import MixSpec
from augment.reuse import cell_identity
from augment.sweep_config import Arm, SweepConfig
from classifier.engine import TrainSettings
from wgan.data import DataConfig

ADDING = Arm("r=1", MixSpec(1.0))
BASE = TrainSettings(model="resnet", epochs=3)  # a model with BatchNorm: every setting acts on it

# field -> (prerequisites, another value): changing it must change an adding cell's identity
SWEEP_CHANGES = {
    "base": ({}, replace(BASE, lr=5e-4)),
    "data": ({}, DataConfig(split="cv", resolution=32)),
    "schedule": ({}, "pretrain-finetune"),
    "pretrain_epochs": ({"schedule": "pretrain-finetune"}, 7),
    "pool": ({}, "fresh-per-epoch"),
    "pool_draws": ({}, "nested"),
    "fidelity_filter": ({}, 0.5),
    "generated_labels": ({}, "teacher"),
    "reference_epochs": ({"fidelity_filter": 0.5}, 9),
    "real_fraction": ({}, 0.5),
    "budget": ({}, "equal-real-passes"),
    "inner_split": ({}, 0.2),
}
# fields that do not change a cell's numbers, or reach its identity another way, and why
SWEEP_ELSEWHERE = {
    "generators": "the content hash of the file a cell draws from (generator_sha256), not the path",
    "arms": "the grid: a cell's own arm (name, mixing, overrides, control) is in its identity",
    "folds": "the grid: a cell's own fold is in its identity",
    "seeds": "the grid: a cell's own seed is in its identity",
    "allow_generator_extra_data": "a permission to run; the data a cell trains on is in data and real_fraction",
    "out": "where the cells are written",
    "save_models": "whether the classifier is also written; the cell's numbers are the same",
    "reuse_from": "where finished cells of the same identity are copied from",
    "plan": "its name and hash enter the identity (tests/test_plan.py)",
}
# TrainSettings field -> another value: each must change the identity of the cell's base settings
SETTINGS_CHANGES = {
    "model": "cnn", "epochs": 4, "batch_size": 16, "optimizer": "sgd", "lr": 5e-4, "weight_decay": 0.05,
    "warmup_epochs": 2, "class_weighted": True, "oversample": True, "dihedral": False, "rotate": True,
    "select_on": "macro_f1", "patience": 5, "seed": 1, "amp": True, "tta": True, "steps_per_epoch": 10,
    "augment_generated": False, "batchnorm_stats": "running",
}


def config(**changes) -> SweepConfig:
    return SweepConfig(**{"generators": {0: Path("g.pt")}, "arms": [ADDING], "folds": [0], "seeds": [0], "base": BASE,
                          **changes})


def identity(cfg: SweepConfig) -> dict:
    return cell_identity(cfg, ADDING, 0, 0, "ab" * 32)


def test_every_field_of_the_sweep_config_is_accounted_for():
    names = {f.name for f in fields(SweepConfig)}
    assert names == set(SWEEP_CHANGES) | set(SWEEP_ELSEWHERE), "classify the new field in this test"
    assert not set(SWEEP_CHANGES) & set(SWEEP_ELSEWHERE)


@pytest.mark.parametrize("name", sorted(SWEEP_CHANGES))
def test_each_sweep_setting_changes_the_cell_identity(name):
    before, value = SWEEP_CHANGES[name]
    assert identity(config(**before)) != identity(config(**before, **{name: value})), name


def test_every_training_setting_changes_the_cell_identity():
    assert {f.name for f in fields(TrainSettings)} == set(SETTINGS_CHANGES), "classify the new field in this test"
    for name, value in SETTINGS_CHANGES.items():
        assert identity(config()) != identity(config(base=replace(BASE, **{name: value}))), name
