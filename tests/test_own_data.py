"""A user's own labelled set (any class names) through the split file and every command."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from commands.augment import augment_eval_command, cml_command
from commands.classifier import classifier_train_command, eval_command
from commands.wgan import sample_command, train_command
from tests.data_helpers import write_fits, write_png
from wgan.data import DataConfig, DataError, load_dataset, resolve_splits, splits
from wgan.data.cache import cache_dir as current_cache_dir

CLASSES = {"FRI": 0, "FRII": 1, "X-shaped": 2}  # a 3-class survey; one name FIRST does not have
PER_CLASS = 14


def blob_image(label: int, seed: int, size: int = 32) -> np.ndarray:
    """A source whose extent depends on its class, at a random position: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(12, 20, 2)
    width = (2.0, 8.0, 24.0)[label]
    image = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / width) + rng.uniform(0, 0.05, (size, size))
    return np.round(255 * image / image.max()).astype(np.uint8)


def make_survey(root: Path) -> Path:
    """PNG for FRI and FRII, FITS (float, arbitrary unit) for X-shaped, as a survey's cutouts might come."""
    for name, label in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            image = blob_image(label, 100 * label + i)
            if name == "X-shaped":
                write_fits(root / name / f"src{i:02d}.fits", image.astype(np.float32) * 1e-3)
            else:
                write_png(root / name / f"src{i:02d}.png", image)
    return root


@pytest.fixture(scope="module")
def survey(tmp_path_factory, session_cache):
    return make_survey(tmp_path_factory.mktemp("survey") / "my_survey")


def cv(root: Path, subset: str, fold: int = 0, **kwargs):
    return load_dataset(DataConfig(source=str(root), split="cv", fold=fold, subset=subset, crop=32, **kwargs))


# --- the split file -------------------------------------------------------------------------

def test_default_split_is_stratified_disjoint_and_covers_every_image(survey):
    test = cv(survey, "test")
    assert test.class_names == ("FRI", "FRII", "X-shaped")
    assert test.class_counts() == {"FRI": 3, "FRII": 3, "X-shaped": 3}  # round(0.2 * 14)
    for fold in range(5):
        train, valid = cv(survey, "train", fold), cv(survey, "valid", fold)
        assert len(train) + len(valid) + len(test) == 3 * PER_CLASS
        assert all(n >= 2 for n in valid.class_counts().values())  # 11 per class dealt over 5 folds
        seen = {bytes(i.numpy()) for i in train.images}
        assert not seen & {bytes(i.numpy()) for i in valid.images}
        assert not seen & {bytes(i.numpy()) for i in test.images}


def test_the_split_is_drawn_once_and_kept_in_the_cache(survey):
    config = resolve_splits(DataConfig(source=str(survey), split="cv", crop=32))
    path = Path(config.splits)
    assert path.parent == current_cache_dir() / "splits" and path.exists()
    before = path.read_text()
    assert resolve_splits(DataConfig(source=str(survey), split="cv", crop=16, resolution=16)).splits == config.splits
    assert path.read_text() == before  # another preprocessing, the same split
    split = json.loads(before)
    assert split["format"] == splits.FORMAT and split["class_names"] == list(CLASSES) and len(split["images"]) == 42


def test_a_cleared_cache_draws_the_same_split_again(survey, capfd):
    path = Path(resolve_splits(DataConfig(source=str(survey), split="cv", crop=32)).splits)
    before = path.read_text()
    capfd.readouterr()
    resolve_splits(DataConfig(source=str(survey), split="cv", crop=32))
    assert "drew a split" not in capfd.readouterr().err  # kept: nothing drawn, nothing said
    path.unlink()
    assert len(cv(survey, "test", splits=str(path))) == 9 and path.read_text() == before
    assert f"drew a split of these 42 images (5 folds and a test set) into {path}" in capfd.readouterr().err


def test_draw_is_deterministic_per_seed_and_keeps_duplicates_together():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    images[1] = images[0]  # the same cutout twice in one class
    labels = np.repeat([0, 1], 20)
    hashes = np.asarray([splits.image_hash(i) for i in images])
    plan = splits.SplitPlan(folds=3)
    a, b = splits.draw(hashes, labels, ("A", "B"), plan), splits.draw(hashes, labels, ("A", "B"), plan)
    assert a == b and a != splits.draw(hashes, labels, ("A", "B"), splits.SplitPlan(folds=3, seed=1))
    places = splits.assign(a, hashes, Path("x"))
    assert places[0] == places[1]
    assert len(a["images"]) == 39
    images[25] = images[0]  # now also under class B
    with pytest.raises(DataError, match="the same image appears under classes A and B"):
        splits.draw(np.asarray([splits.image_hash(i) for i in images]), labels, ("A", "B"), plan)


@pytest.mark.parametrize("sizes, folds, fraction, n_test", [
    ((20, 7, 33), 5, 0.2, (4, 1, 7)),  # rounded: 4, 1.4 -> 1, 6.6 -> 7
    ((6, 50), 3, 0.3, (2, 15)),  # 1.8 -> 2
    ((7, 6), 5, 0.5, (2, 1)),  # 3.5 -> 4 and 3, capped so that each of the 5 folds keeps one image
    ((7, 12), 5, 0.01, (1, 1)),  # at least one test image a class
    ((10,), 2, 0.25, (3,)),  # 2.5 rounds half up
])
def test_a_drawn_split_is_stratified_and_its_subsets_partition_every_fold(sizes, folds, fraction, n_test):
    hashes = np.asarray([f"h{i:03d}" for i in range(sum(sizes))])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    split = splits.draw(hashes, labels, tuple("ABC"[: len(sizes)]), splits.SplitPlan(folds, fraction))
    places = splits.assign(split, hashes, Path("x"))
    for c, n in enumerate(sizes):
        mine = places[labels == c]
        assert (mine == "test").sum() == n_test[c]
        per_fold = [(mine == str(k)).sum() for k in range(folds)]  # the rest dealt in turn, fold 0 first
        rest = n - n_test[c]
        assert per_fold == [rest // folds + (k < rest % folds) for k in range(folds)]
    for fold in range(folds):
        masks = [splits.subset_mask(places, s, fold, folds) for s in ("train", "valid", "test")]
        assert (sum(m.astype(int) for m in masks) == 1).all()  # every image in exactly one subset
        assert (masks[1] == (places == str(fold))).all() and (masks[2] == (places == "test")).all()
    with pytest.raises(DataError, match=f"fold {folds} out of range 0..{folds - 1}"):
        splits.subset_mask(places, "train", folds, folds)
    with pytest.raises(DataError, match="subset 'all' is not defined"):
        splits.subset_mask(places, "all", 0, folds)


def test_a_class_too_small_for_the_folds_is_refused():
    hashes = np.asarray([f"h{i}" for i in range(12)])
    labels = np.asarray([0] * 8 + [1] * 4)
    with pytest.raises(DataError, match="class 'B' has 4 distinct images; a test set and 5 folds need at least 6"):
        splits.draw(hashes, labels, ("A", "B"), splits.SplitPlan())


@pytest.mark.parametrize("content, message", [
    ("not json", "unreadable split file"),
    ('{"format": "other"}', "not a split file"),
    ('{"format": "radiogan-splits/1", "folds": 1, "images": {}}', "'folds' must be an integer >= 2"),
    ('{"format": "radiogan-splits/1", "folds": 5, "images": {"ab": 7}}', "assigned to 7"),
])
def test_a_bad_split_file_is_refused_naming_it(tmp_path, content, message):
    path = tmp_path / "splits.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        splits.load(path)
    assert str(path) in str(info.value)


def test_an_image_missing_from_the_split_file_is_refused_not_assigned(survey, tmp_path):
    data = tmp_path / "grown"
    shutil.copytree(survey, data)
    own = Path(resolve_splits(DataConfig(source=str(survey), split="cv", crop=32)).splits)
    write_png(data / "FRI" / "new.png", blob_image(0, 999))
    with pytest.raises(DataError, match="1 of the 43 images are not in this split file"):
        cv(data, "train", splits=str(own))


def test_a_user_split_file_decides_which_images_are_tested(survey, tmp_path):
    own = json.loads(Path(resolve_splits(DataConfig(source=str(survey), split="cv", crop=32)).splits).read_text())
    moved = next(h for h, where in own["images"].items() if where == "test")
    own["images"][moved] = 0
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(own))
    assert len(cv(survey, "test", splits=str(path))) == len(cv(survey, "test")) - 1
    assert len(cv(survey, "valid", 0, splits=str(path))) == len(cv(survey, "valid", 0)) + 1


def test_make_splits_draws_another_plan_that_every_command_can_use(survey, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "ten.json"
    command = str(Path(sys.executable).with_name("wgan-data"))  # as a user runs it, from any directory
    args = [command, "splits", str(survey), str(out), "--folds", "10", "--test-fraction", "0.1"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and json.loads(out.read_text())["folds"] == 10
    assert cv(survey, "test", splits=str(out)).class_counts() == {c: 1 for c in CLASSES}  # round(0.1 * 14)
    assert len(cv(survey, "valid", 9, splits=str(out))) > 0
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.startswith("Error: ") and "exists; choose a new file" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_split_file_is_refused_for_first():
    with pytest.raises(DataError, match="applies to your own data"):
        load_dataset(DataConfig(split="cv", splits="x.json"))


# --- every command on the survey ------------------------------------------------------------

def train_generator(survey: Path, run_dir: Path, fold: int, *extra: str):
    args = ["--data", str(survey), "--fold", str(fold), "--crop", "32", "--resolution", "32", "--batch-size", "8",
            "--n-critic", "1", "--iters", "2", "--sample-every", "1000", "--run-dir", str(run_dir), "--no-progress",
            "--no-amp", *extra]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    return run_dir / "generator.pt"


@pytest.fixture(scope="module")
def generators(survey, tmp_path_factory):
    root = tmp_path_factory.mktemp("gens")
    return root, {fold: train_generator(survey, root / f"gen-fold{fold}", fold) for fold in (0, 1)}


def test_wgan_train_learns_the_survey_s_classes_on_its_fold(generators):
    root, gens = generators
    from wgan.sampling import load_generator

    gen = load_generator(gens[0])
    assert gen.class_names == list(CLASSES) and gen.model.cfg.num_classes == 3
    assert gen.config.data.splits and (root / "gen-fold0" / "splits.json").read_text() == Path(gen.config.data.splits).read_text()


def test_wgan_sample_draws_a_class_of_the_survey(generators, tmp_path):
    _, gens = generators
    result = CliRunner().invoke(sample_command, ["--n", "3", "--checkpoint", str(gens[0]), "--class", "X-shaped",
                                                 "--out", str(tmp_path / "s"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name.split("_seed")[0] for p in (tmp_path / "s").glob("*.png")) == ["X-shaped"] * 3
    result = CliRunner().invoke(sample_command, ["--n", "3", "--checkpoint", str(gens[0]), "--class", "Bent",
                                                 "--out", str(tmp_path / "t"), "--no-progress"])
    assert result.exit_code != 0 and "'Bent' is not a class of this generator (FRI, FRII, X-shaped)" in result.output


@pytest.fixture(scope="module")
def classifier(survey, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    result = CliRunner().invoke(classifier_train_command, ["--data", str(survey), "--crop", "32", "--resolution", "32",
                                                           "--epochs", "2", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (out / "splits.json").exists() and (out / "summary.json").exists()
    return out / "fold0"


def test_classifier_train_on_the_survey(classifier):
    out = classifier
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["test"]["per_class"]) == list(CLASSES) and metrics["counts"]["test"] == {c: 3 for c in CLASSES}
    assert (out / "splits.json").exists()


def augment(survey: Path, out: Path, *extra: str):
    return CliRunner().invoke(augment_eval_command, [
        "--data", str(survey), "--crop", "32", "--resolution", "32", "--folds", "0", "--epochs", "1", "--workers", "1",
        "--no-baselines", "--out", str(out), "--no-progress", *extra])


def test_augment_eval_uses_each_fold_s_own_generator(survey, generators, tmp_path):
    root, _ = generators
    result = augment(survey, tmp_path / "study", "--ratio", "1", "--ratio", "X-shaped=2", "--rotate",
                     "--checkpoint", str(root / "gen-fold{fold}" / "generator.pt"))
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    assert set(results["summary"]) == {"r=0", "r=1", "X-shaped=2"}
    assert "X-shaped/f1" in results["summary"]["r=1"]["gain"]
    assert results["leakage"]["0"]["valid_images_seen"] == 0 and results["leakage"]["0"]["test_images_seen"] == 0
    cell = json.loads((tmp_path / "study" / "cells" / "X-shaped=2" / "fold0-seed0.json").read_text())
    assert cell["generated_counts"] == {"FRI": 0, "FRII": 0, "X-shaped": 2 * cell["real_counts"]["X-shaped"]}
    assert cell["identity"]["base"]["rotate"] is True and cell["identity"]["data"]["splits"].endswith(".json")
    assert (tmp_path / "study" / "splits.json").exists() and "X-shaped" in (tmp_path / "study" / "report.md").read_text()


def test_another_fold_s_generator_is_reported_for_the_validation_images_it_saw(survey, generators, tmp_path):
    _, gens = generators
    result = augment(survey, tmp_path / "study", "--ratio", "1", "--checkpoint", str(gens[1]))
    assert result.exit_code == 0, result.output
    leak = json.loads((tmp_path / "study" / "results.json").read_text())["leakage"]["0"]
    assert leak["test_images_seen"] == 0 and leak["valid_images_seen"] == len(cv(survey, "valid", 0))


def test_a_generator_trained_on_the_test_images_of_another_split_is_refused(survey, tmp_path):
    own = json.loads(Path(resolve_splits(DataConfig(source=str(survey), split="cv", crop=32)).splits).read_text())
    swapped = {h: (0 if where == "test" else "test" if where == 0 else where) for h, where in own["images"].items()}
    other = tmp_path / "other-split.json"
    other.write_text(json.dumps({**own, "images": swapped}))
    gen = train_generator(survey, tmp_path / "leaky", 1, "--splits", str(other))  # fold 1 train holds our test set
    result = augment(survey, tmp_path / "study", "--ratio", "1", "--checkpoint", str(gen))
    assert result.exit_code != 0 and "the generator was trained on 9 of the 9 test images" in result.output


def test_own_data_without_generators_names_the_fix(survey, tmp_path):
    result = augment(survey, tmp_path / "study", "--ratio", "1")
    assert result.exit_code != 0 and "--checkpoint with {fold}" in result.output
    assert "Traceback" not in result.output


def test_a_first_generator_does_not_fit_the_survey(survey, tmp_path):
    result = augment(survey, tmp_path / "study", "--ratio", "1", "--checkpoint", "first-cv0")
    assert result.exit_code != 0 and "makes 64 px images, the data are 32 px" in result.output


def test_augment_cml_checks_a_survey_generator_with_the_survey_s_own_extractor_and_registry(
        generators, classifier, tmp_path):
    _, gens = generators
    registry = tmp_path / "mine" / "registry.json"
    args = ["--checkpoint", str(gens[0]), "--quick", "--extractor", str(classifier / "model.pt"),
            "--registry", str(registry), "--out", str(tmp_path / "cml"), "--device", "cpu"]
    result = CliRunner().invoke(cml_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "cml" / "report.json").read_text())
    assert list(report["core"]["quality"]) == list(CLASSES) and "X-shaped" in report["core"]["gain"]
    # the drawn Compact and FRII sources of the minimum-functionality test need FIRST's classes
    assert [t["name"] for t in report["core"]["behaviour"]][0] == "invariance"
    assert "minimum functionality" not in {t["name"] for t in report["core"]["behaviour"]}
    assert (registry.parent / "corner_cases.json").exists()
    assert (tmp_path / "cml" / "samples_X-shaped.png").exists()
    # a generator of FIRST's classes cannot be gated against this registry's best
    CliRunner().invoke(cml_command, [*args, "--promote"])
    other = CliRunner().invoke(cml_command, ["--checkpoint", "first-cv0", "--quick", "--registry", str(registry),
                                             "--out", str(tmp_path / "cml2"), "--device", "cpu"])
    assert other.exit_code != 0 and "keep a registry per data set" in other.output


def test_an_extractor_of_other_classes_is_refused_before_any_work(survey, generators, classifier, tmp_path):
    _, gens = generators
    result = CliRunner().invoke(eval_command, ["--checkpoint", str(gens[0]), "--n", "10", "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "the extractor knows classes ['FRI', 'FRII', 'Compact', 'Bent']" in result.output
    assert not (tmp_path / "e").exists()
    result = CliRunner().invoke(eval_command, ["--checkpoint", str(gens[0]), "--extractor", str(classifier / "model.pt"),
                                               "--n", "10", "--kid-subset", "5", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert "X-shaped" in result.output and json.loads((tmp_path / "e" / "scores.json").read_text())["class_names"] == list(CLASSES)
    args = ["--data", str(survey), "--crop", "32", "--resolution", "32", "--iters", "2", "--eval-every", "1",
            "--run-dir", str(tmp_path / "run"), "--no-progress"]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code != 0 and "pass --extractor" in result.output and not (tmp_path / "run").exists()


def test_an_interrupted_classifier_train_goes_on_from_its_saved_epoch(survey, tmp_path, monkeypatch):
    import functools

    from classifier import training
    from classifier.fitstate import FitState

    args = ["--data", str(survey), "--crop", "32", "--resolution", "32", "--epochs", "3", "--no-progress"]
    assert CliRunner().invoke(classifier_train_command, [*args, "--out", str(tmp_path / "straight")]).exit_code == 0
    monkeypatch.setattr(training, "FitState", functools.partial(FitState, every=1))
    real_fit = training.fit

    def dies_after_epoch_2(*a, log=None, **k):
        def logged(epoch, row):
            log(epoch, row)
            if epoch == 2:
                raise KeyboardInterrupt  # ctrl-C, or the job's time is up
        return real_fit(*a, log=logged, **k)

    monkeypatch.setattr(training, "fit", dies_after_epoch_2)
    out = tmp_path / "stopped"
    CliRunner().invoke(classifier_train_command, [*args, "--out", str(out)])
    assert (out / "fold0" / "training-state.pt").is_file() and not (out / "fold0" / "metrics.json").exists()
    monkeypatch.setattr(training, "fit", real_fit)
    result = CliRunner().invoke(classifier_train_command, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    straight, resumed = (json.loads((folder / "fold0" / "metrics.json").read_text()) for folder in (tmp_path / "straight", out))
    assert resumed["test"] == straight["test"] and resumed["history"] == straight["history"]
    assert not (out / "fold0" / "training-state.pt").exists()
    steps = [json.loads(line)["step"] for line in (out / "fold0" / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
