"""augment-eval end to end on the real FIRST folds at 32 px with a tiny generator, one epoch."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.augment import augment_eval_command
from tests.helpers import tiny_config
from wgan.data import DataConfig, load_dataset
from wgan.training_loop import train


def make_generator(root, **data) -> str:
    cfg = tiny_config(iters=1)
    cfg.network.resolution = 32
    cfg.data = DataConfig(resolution=32, **data)
    return str(train(cfg, load_dataset(cfg.data), root, progress=False))


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


def run(args, out):
    return CliRunner().invoke(augment_eval_command, [*args, "--resolution", "32", "--out", str(out), "--no-progress"])


BASE = ["--ratio", "1.5", "--folds", "0", "--epochs", "1", "--workers", "1"]


@pytest.fixture(scope="module")
def sweep(generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    result = run([*BASE, "--checkpoint", generator], out)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_output_is_written(sweep):
    out, printed = sweep
    assert {"results.json", "report.md", "gain.png", "sweep.json"} <= {p.name for p in out.iterdir()}
    results = json.loads((out / "results.json").read_text())
    # rotations/flips are in the base by default, so that baseline is not run again
    assert list(results["summary"]) == ["r=0", "r=1.5", "real+class-weighted", "real+oversample"]
    assert "gain over r=0" in printed and "failed to learn" in printed
    assert list((out / "tensorboard" / "r=1.5" / "fold0-seed0").glob("events.out.tfevents.*"))
    assert results["leakage"]["0"]["test_images_seen"] == 0
    assert results["leakage"]["0"]["valid_images_seen"] == 0
    report = (out / "report.md").read_text()
    assert "Computed under" in report and '"augment_generated": true' in report and results["generator_hashes"]["0"][:12] in report


def test_generated_images_reach_training_only(sweep):
    out, _ = sweep
    cell = json.loads((out / "cells" / "r=1.5" / "fold0-seed0.json").read_text())
    real = {s: load_dataset(DataConfig(split="cv", fold=0, subset=s, resolution=32)).fingerprint for s in ("valid", "test")}
    assert cell["data_fingerprints"]["valid"] == real["valid"] and cell["data_fingerprints"]["test"] == real["test"]
    assert "generated" in cell["data_fingerprints"]["train"]
    # balanced 1.5 x 1405 = 2108 generated images, the rarest classes first
    assert sum(cell["generated_counts"].values()) == 2108
    assert sum(cell["real_counts"].values()) == 1405


def test_a_rerun_skips_finished_cells_and_other_settings_need_another_folder(sweep, generator):
    out, _ = sweep
    cell = out / "cells" / "r=0" / "fold0-seed0.json"
    before = cell.stat().st_mtime_ns
    assert run([*BASE, "--checkpoint", generator], out).exit_code == 0
    assert cell.stat().st_mtime_ns == before
    other = run([*BASE, "--checkpoint", generator, "--lr", "0.01"], out)
    assert other.exit_code != 0 and "another --out" in other.output
    assert "base.lr = 0.001, this run has 0.01" in other.output
    assert "base.warmup_epochs = 1, this run has 5" in run([*BASE, "--checkpoint", generator, "--warmup-epochs", "5"], out).output


def test_another_study_s_cells_of_the_same_identity_are_copied_not_recomputed(sweep, generator, tmp_path):
    out, _ = sweep
    args = [*BASE, "--ratio", "0.5", "--checkpoint", generator, "--baselines", "--reuse-from", str(out)]
    listed = run([*args, "--dry-run"], tmp_path / "new")
    assert listed.exit_code == 0 and f"r=1.5  fold 0  seed 0  reused from {out}" in listed.output
    assert "r=0.5  fold 0  seed 0  to run" in listed.output, listed.output
    result = run(args, tmp_path / "new")
    assert result.exit_code == 0, result.output
    for arm in ("r=0", "r=1.5"):
        assert (tmp_path / "new" / "cells" / arm / "fold0-seed0.json").read_text() == \
            (out / "cells" / arm / "fold0-seed0.json").read_text()
    assert (tmp_path / "new" / "cells" / "r=0.5" / "fold0-seed0.json").exists()
    other = run([*BASE, "--checkpoint", generator, "--lr", "0.002", "--reuse-from", str(out), "--dry-run"], tmp_path / "x")
    assert other.exit_code == 0 and "reused" not in other.output  # another learning rate: nothing to reuse


def test_a_cell_is_reused_only_under_its_whole_identity(sweep, generator, tmp_path):
    """Another mixing mode or another generator file at the same path must not reuse a finished
    cell (both did before cells carried their identity); the real-only cell is shared."""
    out, _ = sweep
    realistic = run([*BASE, "--checkpoint", generator, "--mode", "realistic"], out)
    assert realistic.exit_code != 0 and "cell r=1.5 fold 0 seed 0" in realistic.output
    assert "mixing.mode = 'balanced', this run has 'realistic'" in realistic.output
    replaced = tmp_path / "generator.pt"
    replaced.write_bytes(Path(generator).read_bytes())
    assert run([*BASE, "--checkpoint", replaced, "--no-baselines"], out).exit_code == 0  # same content: reused
    other = make_generator(tmp_path / "other", split="cv", fold=0, crop=64)
    replaced.write_bytes(Path(other).read_bytes())
    changed = run([*BASE, "--checkpoint", replaced, "--no-baselines"], out)
    assert changed.exit_code != 0 and "generator_sha256" in changed.output and "Traceback" not in changed.output


def test_overwrite_recomputes_only_the_cells_that_differ(generator, tmp_path):
    args = ["--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "1", "--no-baselines", "--checkpoint", generator]
    assert run(args, tmp_path).exit_code == 0
    real_only, mixed = (tmp_path / "cells" / arm / "fold0-seed0.json" for arm in ("r=0", "r=1"))
    before = real_only.stat().st_mtime_ns, mixed.stat().st_mtime_ns
    again = run([*args, "--mode", "realistic", "--overwrite"], tmp_path)
    assert again.exit_code == 0, again.output
    assert real_only.stat().st_mtime_ns == before[0] and mixed.stat().st_mtime_ns != before[1]
    assert json.loads(mixed.read_text())["identity"]["mixing"]["mode"] == "realistic"


@pytest.mark.parametrize("args, message", [
    (["--ratio", "-1"], ">= 0"),
    (["--ratio", "nan"], "finite"),
    (["--ratio", "Spiral=2"], "unknown class Spiral"),
    (["--ratio", "1", "--checkpoint", "missing.pt"], "no generator export"),
    (["--ratio", "1", "--resolution", "64"], "makes 32 px images"),
    (["--folds", "7"], "fold 7 out of range 0..4"),
])
def test_bad_input_is_a_click_error_before_any_training(args, message, generator, tmp_path):
    args = args if "--checkpoint" in args else [*args, "--checkpoint", generator]
    result = CliRunner().invoke(augment_eval_command, [*args, "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_generator_trained_on_test_images_is_refused(tmp_path):
    leaky = make_generator(tmp_path / "leaky", split="literature")  # holds 288 of the 400 cv test images
    result = run(["--ratio", "1", "--folds", "0", "--checkpoint", leaky], tmp_path / "out")
    assert result.exit_code != 0 and "trained on 288 of the 400 test images" in result.output


def test_results_do_not_depend_on_the_number_of_workers(generator, tmp_path):
    from pathlib import Path

    from augment.engine import Engine
    from augment.mixing import MixSpec
    from augment.sweep import run_sweep
    from augment.sweep_config import SweepConfig, build_arms
    from classifier.engine import TrainSettings

    base = TrainSettings(epochs=1, dihedral=False)
    results = {}
    for workers in (1, 2):
        config = SweepConfig(generators={0: Path(generator)}, arms=build_arms([MixSpec(0), MixSpec(1)], base, False),
                             folds=[0], seeds=[0], base=base, data=DataConfig(split="cv", resolution=32),
                             out=tmp_path / str(workers))
        results[workers] = [(c["arm"], c["test"]["confusion_matrix"], c["valid_accuracy"])
                            for c in run_sweep(config, Engine(workers), "cpu", progress=False).cells]
    assert results[1] == results[2]  # in this process, and on a local Dask cluster of 2 workers


def test_half_the_real_data_with_a_generator_of_all_of_it_is_refused(generator, tmp_path):
    """The generator learned from the half that --real-fraction 0.5 drops: its images would hand
    the classifier labelled data the real-only arm is denied (a gain from leakage)."""
    result = run(["--ratio", "1", "--folds", "0", "--epochs", "1", "--real-fraction", "0.5", "--checkpoint", generator],
                 tmp_path / "out")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--real-fraction 0.5 drops training images that the generators learned from (fold 0's: 702 of them)" in result.output
    assert "--allow-generator-extra-data" in result.output
    assert not (tmp_path / "out" / "cells").exists()


def test_pretrain_finetune_with_fresh_images_and_half_the_real_data_in_bf16(generator, tmp_path):
    result = run(["--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "1", "--no-baselines", "--amp",
                  "--schedule", "pretrain-finetune", "--pool", "fresh-per-epoch", "--real-fraction", "0.5", "--checkpoint", generator,
                  "--allow-generator-extra-data"],
                 tmp_path)
    assert result.exit_code == 0, result.output
    leak = json.loads((tmp_path / "results.json").read_text())["leakage"]["0"]
    assert leak["dropped_train_images_seen"] == {"0": 702}  # 1405 training images, 703 kept
    assert "The generators learned from training images that the real fraction drops" in (tmp_path / "report.md").read_text()
    cell = json.loads((tmp_path / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert cell["identity"]["base"]["amp"] is True  # --amp: bf16 autocast on the CPU too, part of the identity
    assert cell["real_counts"] == {"FRI": 158, "FRII": 330, "Compact": 116, "Bent": 99}  # half of 316/659/232/198
    assert sum(cell["generated_counts"].values()) == 703
    logged = [json.loads(line) for line in (tmp_path / "tensorboard" / "r=1" / "fold0-seed0" / "stats.jsonl").open()]
    assert [row["step"] for row in logged] == [1, 2] and "pretrain/valid/accuracy" in logged[0]
    assert set(json.loads((tmp_path / "results.json").read_text())["summary"]) == {"r=0", "r=1"}
    assert "pretrain_epochs" not in cell["identity"]  # as long as fine-tuning: cells from before the option stay reusable


def test_pretraining_can_be_longer_than_fine_tuning(generator, tmp_path):
    result = run(["--ratio", "1", "--folds", "0", "--epochs", "1", "--pretrain-epochs", "2", "--workers", "1",
                  "--no-baselines", "--schedule", "pretrain-finetune", "--checkpoint", generator], tmp_path)
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert cell["identity"]["pretrain_epochs"] == 2 and cell["best_epoch"] == 1  # selection: fine-tuning epochs only
    logged = [json.loads(line) for line in (tmp_path / "tensorboard" / "r=1" / "fold0-seed0" / "stats.jsonl").open()]
    assert [row["step"] for row in logged] == [1, 2, 3]
    assert ["pretrain/valid/accuracy" in row for row in logged] == [True, True, False]
    assert "pretrain-finetune (2 epochs on the generated images, then 1 on the real split)" in (tmp_path / "report.md").read_text()
    real_only = json.loads((tmp_path / "cells" / "r=0" / "fold0-seed0.json").read_text())
    assert "pretrain_epochs" not in real_only["identity"]  # nothing to pre-train on: the shared real-only cell


def test_pretrain_epochs_without_the_pretrain_schedule_is_refused(tmp_path):
    result = run(["--ratio", "0", "--folds", "0", "--epochs", "1", "--pretrain-epochs", "2"], tmp_path)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "pretrain epochs only apply to the pretrain-finetune schedule" in result.output


def test_generator_of_another_crop_is_refused_naming_crop_and_pixel_scale(tmp_path):
    """128 px crops at 32 px are 7.2 arcsec/px, 64 px crops at 32 px 3.6: its sources would enter
    the classifier's training set at twice their size."""
    other = make_generator(tmp_path / "crop64", split="cv", fold=0, crop=64)
    result = run(["--ratio", "1", "--folds", "0", "--checkpoint", other], tmp_path / "out")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "64 px crops at 3.6 arcsec/px" in result.output and "128 px crops at 7.2 arcsec/px" in result.output


def test_equal_real_passes_budget_grows_the_steps_with_the_ratio(generator, sweep, tmp_path):
    out, _ = sweep
    equal_steps = json.loads((out / "cells" / "r=1.5" / "fold0-seed0.json").read_text())
    assert equal_steps["steps_per_epoch"] == 44  # ceil(1405 / 32), as for real only
    result = run(["--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "1", "--no-baselines",
                  "--budget", "equal-real-passes", "--checkpoint", generator], tmp_path)
    assert result.exit_code == 0, result.output
    cells = {arm: json.loads((tmp_path / "cells" / arm / "fold0-seed0.json").read_text()) for arm in ("r=0", "r=1")}
    assert cells["r=0"]["steps_per_epoch"] == 44 and cells["r=1"]["steps_per_epoch"] == 88  # ceil(2810 / 32)
    assert cells["r=1"]["identity"]["budget"] == "equal-real-passes" and cells["r=0"]["identity"]["budget"] == "equal-steps"


def test_each_fold_uses_its_released_generator_by_default(generator, tmp_path):
    """With no --checkpoint, fold k gets the generator registered for fold k (trained on its
    training split only, so it saw none of that fold's validation images); a fold without one is
    refused naming it."""
    from wgan import registry
    from wgan.data.cache import file_digest

    exports = {0: Path(generator), 1: Path(make_generator(tmp_path / "gen1", split="cv", fold=1))}
    reg = tmp_path / "checkpoints" / "registry.json"
    for fold, export in exports.items():
        registry.add(reg, "generator", str(export), file_digest(export), "wgan-train ...",
                     {"split": "cv", "fold": fold}, {}, fold_default=True)
    args = ["--ratio", "1", "--epochs", "1", "--workers", "1", "--no-baselines", "--registry", str(reg)]
    result = run([*args, "--folds", "0,1"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    for fold, export in exports.items():
        cell = json.loads((tmp_path / "out" / "cells" / "r=1" / f"fold{fold}-seed0.json").read_text())
        assert file_digest(export).startswith(cell["identity"]["generator_sha256"])
        assert results["leakage"][str(fold)] == {"generator_data": {"source": "first", "split": "cv", "fold": fold},
                                                 "test_images_seen": 0, "valid_images_seen": 0}
    result = run([*args, "--folds", "2"], tmp_path / "out2")
    assert result.exit_code != 0 and "no generator released for fold 2" in result.output
    assert "Traceback" not in result.output
    exports[1].write_bytes(exports[0].read_bytes())  # another file at the registered path
    result = run([*args, "--folds", "1"], tmp_path / "out3")
    assert result.exit_code != 0 and "not the file registered as generator-" in result.output


def test_compare_puts_the_arms_of_several_studies_in_one_table(sweep, tmp_path):
    from augment.compare import table

    out, _ = sweep
    text = table({"first": out, "again": out})
    rows = text.splitlines()
    assert rows[0].startswith("| study | arm | pairs | accuracy | accuracy gain | FRI gain")
    assert sum(r.startswith("| first | r=1.5 | 1 |") for r in rows) == 1
    assert sum(r.startswith("| again | r=0 (real only) | 1 |") for r in rows) == 1


def test_compare_between_pairs_two_studies_by_fold_and_seed(tmp_path):
    from augment.compare import between

    classes = ("FRI", "FRII", "Compact", "Bent")

    def write(folder, fold, seed, accuracy, failure=None):
        cell = {"arm": "r=1", "fold": fold, "seed": seed, "failure": failure,
                "test": {"accuracy": accuracy, "macro_f1": accuracy,
                         "per_class": {c: {"precision": accuracy, "recall": accuracy, "f1": accuracy} for c in classes}}}
        path = tmp_path / folder / "cells" / "r=1" / f"fold{fold}-seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cell))

    for fold in range(3):
        for seed in range(2):
            old = 0.7 + 0.01 * fold + 0.003 * seed
            write("old", fold, seed, old)
            # the new arm: 0.02 better with a little spread, except one run that failed to learn
            failed = (fold, seed) == (2, 1)
            write("new", fold, seed, 0.25 if failed else old + 0.02 + 0.001 * (fold - 1), "one class" if failed else None)
    write("new", 3, 0, 0.9)  # no partner in the old study: not paired
    rows = between(("new", tmp_path / "new", "r=1"), ("old", tmp_path / "old", "r=1")).splitlines()
    # hand-made cells store no per-image predictions: intervals over runs only, and said so
    all_pairs = next(r for r in rows if r.startswith("| all 6 (runs only) |"))
    healthy = next(r for r in rows if r.startswith("| 5 where both learned (runs only) |"))
    assert "+0.020 [" in healthy and healthy.count("*") == 5
    assert "+0.020" not in all_pairs.split("|")[2]
    with pytest.raises(ValueError, match="no cells of arm 'r=2'"):
        between(("new", tmp_path / "new", "r=2"), ("old", tmp_path / "old", "r=1"))


def test_predictors_rank_scores_against_the_measured_gain(tmp_path):
    from augment.predictors import gains, table

    classes = ("FRI", "FRII", "Compact", "Bent")
    planted = {(0, "FRI"): 0.05, (0, "FRII"): -0.02, (0, "Compact"): 0.0, (0, "Bent"): -0.10,
               (1, "FRI"): 0.03, (1, "FRII"): 0.01, (1, "Compact"): -0.04, (1, "Bent"): 0.02}
    for fold in (0, 1):
        for seed in (0, 1):
            for arm in ("r=0", "r=1"):
                f1 = {c: 0.5 + (planted[fold, c] if arm == "r=1" else 0.0) + 0.01 * seed for c in classes}
                cell = {"arm": arm, "fold": fold, "seed": seed, "test": {"per_class": {c: {"f1": f1[c]} for c in classes}}}
                path = tmp_path / "cells" / arm / f"fold{fold}-seed{seed}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(cell))
    measured = gains(tmp_path, "r=1")
    assert measured.keys() == planted.keys()
    assert all(abs(measured[k] - planted[k]) < 1e-12 for k in planted)
    # FID exactly minus the gain ranks the generators perfectly (rho -1); recall is unrelated noise
    cards = {fold: {"scores": {c: {"fid": -planted[fold, c], "kid": 0.0, "recall": 0.5, "precision": 1.0}
                               for c in classes},
                    "floor": {c: {"fid": 2.0} for c in classes},
                    "class_fidelity": {"scores": {c: 0.5 for c in classes}}} for fold in (0, 1)}
    text = table(tmp_path, "r=1", cards)
    assert "| FID | lower | -1.00 |" in text and "| FID / floor | lower | -1.00 |" in text
    assert "| class fidelity | higher | the same on every card |" in text
    assert "| train-on-generated F1 | higher | not on the cards |" in text
    # a second study of other generators pools its pairs: there recall follows the gain exactly
    other = {fold: {**cards[fold], "scores": {c: {**cards[fold]["scores"][c], "recall": 0.5 + planted[fold, c]}
                                              for c in classes}} for fold in (0, 1)}
    pooled = table(tmp_path, "r=1", cards, ((tmp_path, "r=1", other),))
    assert "| FID | lower | -1.00 | 0.00 | 16 |" in pooled
    from scipy.stats import spearmanr

    # recall: 0.5 for the first group's 8 pairs, 0.5 + gain for the second's
    gain = [planted[k] for k in sorted(planted)]
    rho = spearmanr([0.5] * 8 + [0.5 + g for g in gain], gain + gain)[0]
    assert f"| recall | higher | {rho:+.2f} |" in pooled and 0.3 < rho < 0.9
