"""The generator check end to end on a tiny generator (one fold, one epoch), and its gates."""

import json

import pytest
from click.testing import CliRunner

from augment import cml, cml_report
from augment.degrade import degrade
from commands.augment import cml_command
from tests.helpers import tiny_config
from wgan import registry
from wgan.data import DataConfig, load_dataset
from wgan.training_loop import train


@pytest.fixture(scope="module")
def checked(tmp_path_factory, session_cache):
    root = tmp_path_factory.mktemp("cml")
    cfg = tiny_config(iters=1)
    cfg.network.resolution = 64
    cfg.data = DataConfig(split="cv", fold=0, resolution=64)
    export = train(cfg, load_dataset(cfg.data), root / "gen", progress=False)
    paths = cml.Paths(export, root / "out", root / "registry.json", corner_cases=root / "corner_cases.json")
    settings = cml.CmlSettings(folds=[0], epochs=1, n_quality=20, vit_epochs=1)
    report = cml.decide(cml.run(paths, settings, "cpu"), paths.registry)
    return paths, settings, report


def test_every_section_and_figure_is_written(checked):
    paths, _, report = checked
    assert report["passed"] and report["best"] is None and report["gates"] == []
    core = report["core"]
    assert set(core["quality"]) == set(core["floor"]) == {"FRI", "FRII", "Compact", "Bent"}
    assert {"FRI", "Bent", "accuracy"} <= set(core["gain"])
    assert [t["name"] for t in core["behaviour"]][0] == "invariance" and len(core["behaviour"]) == 4
    assert len(core["corners"]) == json.loads(paths.corner_cases.read_text())["cases"].__len__()
    for name in ("gradcam.png", "attention.png", "embedding.png", "samples_FRI.png", "samples_Bent.png"):
        assert (paths.out / name).stat().st_size > 1000, name
    text = cml_report.markdown(report, None)
    assert text.startswith("# Generator check: PASSED") and "## Behavioural tests" in text
    # the attention maps come with how well their ViT classifies (the patch-token ViT stayed at chance)
    vit = report["vit"]
    assert vit["model"] == "vit-conv" and vit["epochs"] == 1 and 0 <= vit["test_accuracy"] <= 1
    assert f"from a `vit-conv` trained 1 epoch with the generated images (test accuracy {vit['test_accuracy']:.3f}" in text
    older = {k: v for k, v in report.items() if k != "vit"}  # a report written before the ViT's accuracy was kept
    assert "on the same images:" in cml_report.markdown(older, None)


def test_a_regression_against_the_best_fails_is_named_and_exits_1(checked, monkeypatch):
    paths, settings, report = checked
    better = json.loads(json.dumps(report["core"]))
    for q in better["quality"].values():
        q["kid"], q["kid_std"] = q["kid"] - 100.0, 0.0
    registry.add(paths.registry, "generator", "best.pt", "ab" * 32, "wgan-train", {}, better, promote=True)
    # through the command, whose exit status a pipeline reads: --quick made the fixture's settings,
    # so the cells are reused
    quick = {k: getattr(settings, k) for k in cml.QUICK}
    monkeypatch.setattr(cml, "QUICK", quick)
    result = CliRunner().invoke(cml_command, ["--checkpoint", str(paths.checkpoint), "--quick", "--registry",
                                              str(paths.registry), "--corner-cases", str(paths.corner_cases),
                                              "--out", str(paths.out), "--no-progress"])
    assert result.exit_code == 1 and "FAILED; wrote" in result.output and "Traceback" not in result.output, result.output
    again = json.loads((paths.out / "report.json").read_text())
    assert not again["passed"] and again["best"] == "generator-abababababab"
    failed = [g["name"] for g in again["gates"] if not g["passed"]]
    assert failed == ["KID FRI", "KID FRII", "KID Compact", "KID Bent"]
    assert "**KID FRI** regressed" in cml_report.markdown(again, better)


def test_degraded_weights_change_the_export(checked, tmp_path):
    import torch

    from wgan import checkpoint

    paths, _, _ = checked
    degrade(paths.checkpoint, tmp_path / "worse.pt", noise=0.5)
    a = checkpoint.load(paths.checkpoint, checkpoint.GENERATOR_EXPORT)["state_dict"]
    b = checkpoint.load(tmp_path / "worse.pt", checkpoint.GENERATOR_EXPORT)["state_dict"]
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed and not any("running" in k for k in changed)


def test_missing_checkpoint_is_a_click_error(tmp_path):
    result = CliRunner().invoke(cml_command, ["--checkpoint", str(tmp_path / "none.pt"), "--quick"])
    assert result.exit_code != 0 and "no generator export" in result.output and "Traceback" not in result.output


def test_the_release_of_a_generators_own_fold_is_named_when_it_is_not_the_bar(tmp_path):
    """The gates compare with the registry's best; a fold's release without augment-cml metrics
    cannot be the bar, and the command says so rather than letting the pass read as 'better than
    this fold's release'."""
    path = tmp_path / "registry.json"
    registry.add(path, "generator", "fold1.pt", "cd" * 32, "wgan-train", {"split": "cv", "fold": 1}, {},
                 fold_default=True)
    loaded = registry.load(path)
    assert registry.fold_release(loaded, {"split": "cv", "fold": 1}) == "generator-cdcdcdcdcdcd"
    assert registry.fold_release(loaded, {"split": "cv", "fold": 0}) is None
    assert registry.fold_release(loaded, {"split": "literature", "fold": 1}) is None


def test_a_corner_case_list_of_another_test_set_stops_the_check_before_any_training(checked, tmp_path):
    paths, settings, _ = checked
    cases = json.loads(paths.corner_cases.read_text())
    cases["cases"][0]["id"] = cases["cases"][0]["id"][:-8] + "00000000"  # another image at that index
    other = tmp_path / "corner_cases.json"
    other.write_text(json.dumps(cases))
    elsewhere = cml.Paths(paths.checkpoint, tmp_path / "out", paths.registry, corner_cases=other)
    with pytest.raises(ValueError, match="is not in this test set"):
        cml.run(elsewhere, settings, "cpu")
    assert not (tmp_path / "out" / "train-cnn").exists()
