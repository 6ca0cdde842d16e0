"""The tools that were library mains, as click commands: what they write and how they refuse."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from commands.data import data_group
from commands.release import release_group
from commands.study_tools import tools_group
from wgan import checkpoint, registry
from wgan.released import CHECKPOINTS, GENERATOR


def invoke(group, *args):
    return CliRunner().invoke(group, [str(a) for a in args])


def test_registering_a_release_card_names_it_and_a_generator_is_not_promoted_by_hand(tmp_path):
    card = tmp_path / "generator-cv0-s1.json"
    shutil.copy(CHECKPOINTS / "replicas" / "generator-cv0-s1.json", card)
    shutil.copy(CHECKPOINTS / "replicas" / "generator-cv0-s1.pt", tmp_path)
    path = tmp_path / "registry.json"
    done = invoke(release_group, "register", card, "--registry", path, "--fold-default")
    assert done.exit_code == 0, done.output
    assert registry.resolve(path, "first-cv0-s1") == tmp_path / "generator-cv0-s1.pt"
    with pytest.raises(registry.RegistryError, match="released: first-cv0-s1$"):  # a replica, not the fold's release
        registry.resolve(path, "first-cv0")
    refused = invoke(release_group, "register", card, "--registry", path, "--promote")
    assert refused.exit_code == 1 and "augment-cml --promote" in refused.output and "Traceback" not in refused.output


def test_rescoring_with_another_generators_scores_is_refused_and_the_card_kept(tmp_path):
    card = tmp_path / "generator.json"
    shutil.copy(CHECKPOINTS / "generator.json", card)
    before = card.read_text()
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"generator": {"file_hash": "0" * 16}}))
    done = invoke(release_group, "rescore", scores, tmp_path / "generator")
    assert done.exit_code == 1 and "not the one" in done.output
    assert card.read_text() == before


def test_a_degraded_copy_loads_with_the_same_config_and_other_weights(tmp_path):
    done = invoke(tools_group, "degrade", "first-cv0", tmp_path / "worse.pt", "--noise", "0.5")
    assert done.exit_code == 0, done.output
    old, new = (checkpoint.load(p, checkpoint.GENERATOR_EXPORT) for p in (GENERATOR, tmp_path / "worse.pt"))
    assert new["config"] == old["config"]
    changed = [k for k, v in old["state_dict"].items() if v.is_floating_point() and not torch.equal(v, new["state_dict"][k])]
    assert changed


def test_a_split_file_for_first_is_refused_in_one_line(tmp_path):
    done = invoke(data_group, "splits", "first", tmp_path / "x.json")
    assert done.exit_code == 1 and "FIRST keeps its published folds" in done.output
    assert not (tmp_path / "x.json").exists()


def test_compare_between_names_what_it_expects(tmp_path):
    done = invoke(tools_group, "compare", "--between", f"a={tmp_path}:r=1", f"b={tmp_path}:r=1")
    assert done.exit_code == 1 and "expected LABEL=FOLDER:ARM" in done.output


def test_the_cache_is_listed_and_cleared_and_then_rebuilt(tmp_path, monkeypatch):
    from tests.helpers import synthetic_h5
    from wgan.data import DataConfig, load_dataset

    monkeypatch.setenv("RADIOGAN_CACHE", str(tmp_path / "cache"))
    data = DataConfig(source=str(synthetic_h5(tmp_path / "set.h5")), split="literature", crop=None)
    first = load_dataset(data)
    listed = invoke(data_group, "cache")
    assert listed.exit_code == 0 and f"{tmp_path / 'cache'}: 1 preprocessed data sets and 0 split files" in listed.output
    cleared = invoke(data_group, "cache", "--clear")
    assert cleared.exit_code == 0 and cleared.output.startswith("removed 1 files")
    assert list((tmp_path / "cache").glob("*.npz")) == []
    assert torch.equal(load_dataset(data).images, first.images)  # rebuilt, the same
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_releasing_a_classifier_folder_of_folds_names_the_fold_to_release(tmp_path):
    for fold in (0, 1):
        (tmp_path / "run" / f"fold{fold}").mkdir(parents=True)
        (tmp_path / "run" / f"fold{fold}" / "model.pt").write_bytes(b"")
    done = invoke(release_group, "classifier", tmp_path / "run", tmp_path / "extractor", "--command", "classifier-train")
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert f"has no model.pt: it holds the folds fold0, fold1; release one, e.g. {tmp_path / 'run' / 'fold0'}" in done.output
    assert not list(tmp_path.glob("extractor*"))
