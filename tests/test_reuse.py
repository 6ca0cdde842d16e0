"""Which cells a sweep runs, refuses or reuses, on hand-written cell files (no training): the
rules the slower end-to-end tests of tests/test_augment_eval.py exercise through the CLI, here
fast enough to run for every mutant of augment/reuse.py (docs/mutation.md)."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from augment.mixing import MixSpec
from augment.plan import Plan
from augment.reuse import (
    CellMismatch,
    adopt,
    cell_identity,
    cells,
    check_reuse,
    generator_hash,
    reusable,
    todo,
)
from augment.sweep_config import Arm, SweepConfig
from classifier.engine import TrainSettings
from commands.augment import augment_eval_command
from wgan import checkpoint as ckpt

REAL = Arm("r=0")
ADDING = Arm("r=1", MixSpec(1.0))
BASE = TrainSettings(model="cnn", epochs=3)


@pytest.fixture
def generators(tmp_path):
    """Two replicas of fold 0's generator and one of fold 1's (any bytes: cells know them by hash)."""
    paths = []
    for name in ("g0a", "g0b", "g1"):
        paths.append(tmp_path / f"{name}.pt")
        paths[-1].write_bytes(name.encode() * 10)
    return {0: (paths[0], paths[1]), 1: (paths[2],)}


def config(generators, out: Path, **changes) -> SweepConfig:
    return SweepConfig(**{"generators": generators, "arms": [REAL, ADDING], "folds": [0, 1], "seeds": [0, 1],
                          "base": BASE, "out": out, **changes})


def finish(cfg: SweepConfig, arm: Arm, fold: int, seed: int, identity: dict | None = None, **extra) -> Path:
    """Write a finished cell as a sweep does: its record with its identity."""
    if identity is None:
        identity = cell_identity(cfg, arm, fold, seed, generator_hash(cfg, fold, seed))
    path = cfg.cell_path(arm, fold, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identity": identity, **extra}))
    return path


def test_the_grid_is_every_arm_fold_and_seed(generators, tmp_path):
    cfg = config(generators, tmp_path, seeds=[0, 1, 2])
    grid = [(arm.name, fold, seed) for arm, fold, seed in cells(cfg)]
    assert len(grid) == 2 * 2 * 3 and len(set(grid)) == len(grid)
    assert grid[:4] == [("r=0", 0, 0), ("r=0", 0, 1), ("r=0", 0, 2), ("r=0", 1, 0)]
    assert {arm for arm, _, _ in grid} == {"r=0", "r=1"}


def test_todo_leaves_out_finished_cells_and_runs_seed_by_seed_then_fold_by_fold(generators, tmp_path):
    cfg = config(generators, tmp_path)
    finish(cfg, REAL, 0, 0)
    order = [(arm.name, fold, seed) for arm, fold, seed in todo(cfg)]
    assert order == [("r=1", 0, 0), ("r=0", 1, 0), ("r=1", 1, 0),
                     ("r=0", 0, 1), ("r=1", 0, 1), ("r=0", 1, 1), ("r=1", 1, 1)]


def test_generator_replicas_serve_the_seeds_in_turn(generators, tmp_path):
    cfg = config(generators, tmp_path)
    g0a, g0b = (ckpt.file_hash(path) for path in generators[0])
    assert g0a != g0b
    assert [generator_hash(cfg, 0, seed) for seed in range(4)] == [g0a, g0b, g0a, g0b]
    assert generator_hash(cfg, 1, 3) == ckpt.file_hash(generators[1][0])
    assert generator_hash(config(None, tmp_path, arms=[REAL]), 0, 0) is None


def test_a_real_only_cell_knows_no_generator_and_an_adding_one_knows_its_own(generators, tmp_path):
    cfg = config(generators, tmp_path)
    real = cell_identity(cfg, REAL, 0, 1, "aa")
    assert real["generator_sha256"] is None and real["mixing"] is None and real["pool"] is None
    assert real == cell_identity(cfg, REAL, 0, 1, "bb")
    assert real == cell_identity(config(generators, tmp_path, pool="fresh-per-epoch", fidelity_filter=0.5), REAL, 0, 1, "b")
    # nor how generated images would be scheduled or budgeted: the real-only cell trains the same way
    other_protocol = config(generators, tmp_path, schedule="pretrain-finetune", budget="equal-real-passes")
    assert real == cell_identity(other_protocol, REAL, 0, 1, "aa")
    assert (real["schedule"], real["budget"]) == ("mixed", "equal-steps")  # as every real-only cell ever stored
    adding = cell_identity(cfg, ADDING, 0, 1, "aa")
    assert adding["generator_sha256"] == "aa" and adding["mixing"] == {"ratio": 1.0, "mode": "balanced",
                                                                          "per_class": {}}
    assert adding != cell_identity(cfg, ADDING, 0, 1, "bb")
    assert (adding["arm"], adding["fold"], adding["seed"]) == ("r=1", 0, 1)
    assert adding["control"] is None and cell_identity(cfg, Arm("c", MixSpec(1.0), control="shuffled-labels"),
                                                       0, 1, "aa")["control"] == "shuffled-labels"


def test_finished_cells_of_the_same_identity_pass_and_others_are_refused_by_name(generators, tmp_path):
    cfg = config(generators, tmp_path)
    finish(cfg, REAL, 0, 0)
    finish(cfg, ADDING, 1, 1)
    check_reuse(cfg)  # the same settings: nothing to say
    other = config(generators, tmp_path, base=TrainSettings(model="cnn", epochs=4))
    with pytest.raises(CellMismatch, match=r"cell r=0 fold 0 seed 0 was computed with base\.epochs = 3, this run has 4"):
        check_reuse(other)
    realistic = config(generators, tmp_path, arms=[REAL, Arm("r=1", MixSpec(1.0, mode="realistic"))])
    with pytest.raises(CellMismatch, match=r"cell r=1 fold 1 seed 1 .*mixing\.mode = 'balanced'.*'realistic'.*--overwrite"):
        check_reuse(realistic)
    assert cfg.cell_path(ADDING, 1, 1).exists()  # a refusal deletes nothing


def test_a_cell_without_a_readable_identity_is_refused(generators, tmp_path):
    cfg = config(generators, tmp_path)
    for content in ("{not json", json.dumps([1, 2]), json.dumps({"accuracy": 0.8})):
        path = finish(cfg, REAL, 0, 0)
        path.write_text(content)
        with pytest.raises(CellMismatch, match="no recorded identity"):
            check_reuse(cfg)


def test_overwrite_deletes_only_the_cells_computed_under_other_settings(generators, tmp_path):
    cfg = config(generators, tmp_path)
    kept = finish(cfg, REAL, 0, 0)
    stale = [finish(cfg, ADDING, 0, 0), finish(cfg, ADDING, 1, 1)]
    realistic = config(generators, tmp_path, arms=[REAL, Arm("r=1", MixSpec(1.0, mode="realistic"))])
    check_reuse(realistic, overwrite=True)
    assert kept.exists() and not any(path.exists() for path in stale)
    check_reuse(realistic)  # nothing left to refuse


def test_a_replaced_generator_file_makes_its_cells_stale(generators, tmp_path):
    cfg = config(generators, tmp_path)
    finish(cfg, ADDING, 0, 1)  # seed 1: the second replica of fold 0
    generators[0][0].write_bytes(b"another generator")  # the first replica changes: seed 1's cell stays valid
    check_reuse(cfg)
    generators[0][1].write_bytes(b"another generator")
    with pytest.raises(CellMismatch, match="generator_sha256"):
        check_reuse(cfg)


def test_cells_of_the_same_identity_in_other_folders_are_found_and_copied(generators, tmp_path):
    first, second, new = tmp_path / "first", tmp_path / "second", tmp_path / "new"
    finish(config(generators, first), REAL, 0, 0, accuracy=0.81)
    finish(config(generators, first, base=TrainSettings(model="cnn", epochs=4)), REAL, 1, 0)  # other settings
    finish(config(generators, second), ADDING, 1, 1, accuracy=0.79)
    cfg = config(generators, new, reuse_from=(first, second))
    found = reusable(cfg)
    assert found == {("r=0", 0, 0): first / "cells" / "r=0" / "fold0-seed0.json",
                     ("r=1", 1, 1): second / "cells" / "r=1" / "fold1-seed1.json"}
    assert adopt(cfg) == 2
    for (name, fold, seed), source in found.items():
        assert (new / "cells" / name / f"fold{fold}-seed{seed}.json").read_text() == source.read_text()
    assert reusable(cfg) == {}  # adopted cells are finished: nothing left to take
    assert reusable(config(generators, tmp_path / "alone")) == {}  # no folder to reuse from


def test_the_first_folder_with_a_matching_cell_wins_and_a_mismatching_one_is_passed_over(generators, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    finish(config(generators, first), REAL, 0, 0, identity={"arm": "r=0", "stale": True})
    finish(config(generators, second), REAL, 0, 0, accuracy=0.5)
    finish(config(generators, first), REAL, 1, 0, accuracy=0.1)
    finish(config(generators, second), REAL, 1, 0, accuracy=0.2)
    found = reusable(config(generators, tmp_path / "new", reuse_from=(first, second)))
    assert found[("r=0", 0, 0)].parent.parent.parent == second
    assert found[("r=0", 1, 0)].parent.parent.parent == first


def test_the_committed_cells_of_the_confirmatory_study_stay_reusable(tmp_path):
    """Every finished cell of the committed confirmatory study must keep the identity today's code
    computes for it (setting names, defaults, the generators' hashes): a renamed key or changed
    default would make the study refuse its own cells, or recompute them, when it continues."""
    study = Path(__file__).resolve().parents[1] / "docs" / "augment" / "confirmatory"
    committed = sorted(p.relative_to(study / "cells").as_posix() for p in (study / "cells").glob("*/fold*-seed*.json"))
    assert committed, "the study has committed cells"
    shutil.copytree(study / "cells", tmp_path / "cells")
    listed = CliRunner().invoke(augment_eval_command, ["--plan", str(study / "plan.toml"), "--out", str(tmp_path),
                                                       "--dry-run", "--no-progress"])
    assert listed.exit_code == 0, listed.output
    done = sorted(f"{arm}/fold{fold}-seed{seed}.json" for arm, _, fold, _, seed, state in
                  (line.split() for line in listed.output.splitlines() if line.endswith("  done")))
    assert done == committed


def test_the_identity_keys_of_optional_settings_are_those_stored_in_committed_cells(generators, tmp_path):
    """Optional settings enter a cell's identity only away from the value every earlier cell had,
    under these names (committed studies store them): a renamed key would orphan their cells."""
    plan = Plan(name="p", sha256="ab" * 32, question="q", primary="accuracy", secondary=(), decision="d")
    cfg = config(generators, tmp_path, schedule="pretrain-finetune", pretrain_epochs=7, generated_labels="teacher",
                 reference_epochs=9, inner_split=0.2, plan=plan, pool_draws="per-arm")
    adding = cell_identity(cfg, ADDING, 0, 0, "aa")
    optional = {"generated_labels": "teacher", "pretrain_epochs": 7, "inner_split": 0.2,
                "plan": {"name": "p", "sha256": "ab" * 32}, "pool_draws": "per-arm", "reference_epochs": 9}
    assert {key: adding[key] for key in optional} == optional
    real = cell_identity(cfg, REAL, 0, 0, "aa")  # only what changes a real-only cell
    assert {key for key in optional if key in real} == {"inner_split", "plan"}
    plain = cell_identity(config(generators, tmp_path, pool_draws="nested"), ADDING, 0, 0, "aa")  # as earlier cells
    assert not set(optional) & set(plain)
