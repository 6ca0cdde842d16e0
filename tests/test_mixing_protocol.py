"""The mixing protocol's options: fresh-per-batch images, the class-fidelity filter, the
shuffled-label control, the cost estimate and --dry-run, and cells that fail without stopping
the others."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from augment import mixing, pool
from classifier.engine import TrainSettings, fit
from classifier.export import load_classifier
from classifier.models import build_model
from commands.augment import augment_eval_command
from tests.helpers import synthetic_set
from tests.test_augment_mixing import tiny_generator
from wgan.data import GENERATED_SOURCE, ImageSet


def run(args, out):
    return CliRunner().invoke(augment_eval_command, [*args, "--resolution", "32", "--out", str(out), "--no-progress"])


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    from tests.test_augment_eval import make_generator

    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


ONE_CELL = ["--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "1", "--no-baselines"]


@pytest.fixture(autouse=True)
def one_epoch_references_pass(monkeypatch):
    """A reference classifier trained for one epoch on FIRST calls every image one class, and the
    sweep refuses it (tests/test_health.py); these tests are about what the filter and the teacher
    do with a reference, so the check is recorded here (cells run in this process with one worker)
    instead of refusing."""
    checked = []
    monkeypatch.setattr("augment.filtering.refuse_collapsed", lambda report, *args, **kwargs: checked.append(report))
    return checked


def test_fresh_images_replace_every_generated_image_of_every_batch():
    data = synthetic_set(32, size=32)
    data.fingerprint += ":cv/0/train"
    data.source[16:] = GENERATED_SOURCE
    asked = []

    def fresh(labels):
        asked.append(labels.clone())
        return torch.full((len(labels), 32, 32), 255, dtype=torch.uint8)

    settings = TrainSettings(epochs=2, batch_size=8, dihedral=False)
    fit(build_model("cnn", 32, seed=0), data, data, settings, torch.device("cpu"), progress=False, fresh=fresh)
    drawn = torch.cat(asked)
    assert len(drawn) == 2 * 16  # every generated slot of both epochs, each once
    assert sorted(drawn.tolist()) == sorted(data.labels[16:].tolist() * 2)  # same classes as the slots


def test_stream_never_repeats_an_image_and_is_deterministic(cache_dir):
    gen = tiny_generator()
    a, b = pool.Stream(gen, seed=1), pool.Stream(gen, seed=1)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    first, second = a(labels), a(labels)
    assert not any(torch.equal(x, y) for x in first for y in second)
    assert torch.equal(b(labels), first) and torch.equal(b(labels), second)


def test_fidelity_filter_keeps_only_accepted_images_and_fills_every_class(cache_dir):
    gen = tiny_generator()
    level = pool.draw(gen, [8, 8, 8, 8], seed=0).images.float().mean((1, 2)).median()
    bright = lambda images, labels: images.float().mean((1, 2)) > level  # noqa: E731
    kept = pool.draw_accepted(gen, [3, 2, 2, 1], seed=0, accept=bright)
    assert kept.class_counts() == {"FRI": 3, "FRII": 2, "Compact": 2, "Bent": 1}
    assert bright(kept.images, kept.labels).all()
    nothing = lambda images, labels: torch.zeros(len(labels), dtype=torch.bool)  # noqa: E731
    with pytest.raises(ValueError, match="fidelity filter passes too few"):
        pool.draw_accepted(gen, [1, 1, 1, 1], seed=0, accept=nothing)


def test_shuffled_label_control_keeps_the_images_and_class_mix(cache_dir):
    drawn = pool.draw(tiny_generator(), [6, 6, 6, 6], seed=0)
    control = pool.shuffle_labels(drawn, seed=0)
    assert torch.equal(control.images, drawn.images)
    assert control.class_counts() == drawn.class_counts()
    assert (control.labels != drawn.labels).float().mean() > 0.5


def test_protocol_options_run_as_arms_and_enter_each_cell_identity(generator, tmp_path, one_epoch_references_pass):
    result = run([*ONE_CELL, "--checkpoint", generator, "--pool", "fresh-per-batch", "--fidelity-filter", "0.9",
                  "--control", "shuffled-labels", "--generated-augment", "none"], tmp_path)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["summary"]) == ["r=0", "r=1", "r=1+shuffled-labels"]
    cell = json.loads((tmp_path / "cells" / "r=1+shuffled-labels" / "fold0-seed0.json").read_text())
    assert cell["identity"]["control"] == "shuffled-labels" and cell["identity"]["pool"] == "fresh-per-batch"
    assert cell["identity"]["fidelity_filter"] == 0.9 and cell["seconds"] > 0
    assert cell["device"] == "cpu" and cell["torch"] == torch.__version__
    assert len(list((tmp_path / "filters").glob("classifier-*.pt"))) == 1  # one filter for fold 0 seed 0
    # the reference was judged on its validation split before it filtered anything (once per cell)
    assert [r["split"] for r in one_epoch_references_pass] == ["validation"] * 2
    assert "generated pool fresh-per-batch (per-arm draws), fidelity filter 0.9" in (tmp_path / "report.md").read_text()


def test_dry_run_lists_the_cells_and_their_cost_and_trains_nothing(generator, tmp_path):
    result = run([*ONE_CELL, "--checkpoint", generator, "--seeds", "0,1", "--dry-run"], tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.count("  to run\n") == 4 and "r=1  fold 0  seed 1  to run" in result.output
    assert "4 of 4 cells to run, about" in result.output and "CPU-minutes" in result.output
    assert not (tmp_path / "cells").exists()


def test_a_failing_cell_stops_no_other_and_is_retried_by_the_next_run(generator, tmp_path, monkeypatch):
    from augment import sweep

    real_run_cell = sweep.run_cell

    def flaky(config, arm, fold, seed, device="cpu"):
        if arm.name == "r=1" and seed == 1:
            raise RuntimeError("out of memory (injected)")
        return real_run_cell(config, arm, fold, seed, device)

    args = [*ONE_CELL, "--checkpoint", generator, "--seeds", "0,1"]
    monkeypatch.setattr(sweep, "run_cell", flaky)
    result = run(args, tmp_path)
    assert result.exit_code == 1 and "1 cells failed" in result.output and "Traceback" not in result.output
    errors = json.loads((tmp_path / "errors.json").read_text())
    assert errors == [{"arm": "r=1", "fold": 0, "seed": 1, "error": "RuntimeError: out of memory (injected)"}]
    assert "out of memory (injected)" in (tmp_path / "report.md").read_text()
    assert len(list((tmp_path / "cells").rglob("*.json"))) == 3
    monkeypatch.setattr(sweep, "run_cell", real_run_cell)
    result = run(args, tmp_path)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cells").rglob("*.json"))) == 4 and not (tmp_path / "errors.json").exists()
    assert json.loads((tmp_path / "results.json").read_text())["errors"] == []


def test_cost_uses_each_arms_own_finished_cells(tmp_path):
    from augment.cost import estimate
    from augment.mixing import MixSpec
    from augment.sweep import SweepConfig, build_arms
    from wgan.data import DataConfig

    base = TrainSettings(epochs=1)
    config = SweepConfig(generators=None, arms=build_arms([MixSpec(0), MixSpec(1)], base, False), folds=[0],
                         seeds=[0, 1, 2], base=base, data=DataConfig(split="cv", resolution=32), out=tmp_path)
    for arm, seed, seconds in (("r=0", 0, 10.0), ("r=0", 1, 20.0), ("r=1", 0, 100.0)):
        path = config.cell_path(next(a for a in config.arms if a.name == arm), 0, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seconds": seconds}))
    cost = estimate(config)
    assert (cost.n_cells, cost.n_todo) == (6, 3)
    assert cost.seconds_per_cell == pytest.approx((15.0 + 100.0 + 100.0) / 3)  # r=0 seed 2, r=1 seeds 1 and 2
    assert cost.source == "median of the finished cells of each arm"


def test_cost_counts_the_pretraining_epochs_of_arms_that_add_images(tmp_path):
    from augment import cost
    from augment.mixing import MixSpec
    from augment.sweep import SweepConfig, build_arms
    from wgan.data import DataConfig

    timings = cost._Timings(real=synthetic_set(64, size=32), n_valid=0, n_test=0, step=1.0, forward=0.0, generate=0.0)
    base = TrainSettings(epochs=2, batch_size=16)
    seconds = {}
    for schedule, pretrain in (("mixed", None), ("pretrain-finetune", None), ("pretrain-finetune", 5)):
        config = SweepConfig(generators=None, arms=build_arms([MixSpec(0), MixSpec(1)], base, False), folds=[0],
                             seeds=[0], base=base, data=DataConfig(split="cv", resolution=32), schedule=schedule,
                             pretrain_epochs=pretrain, out=tmp_path)
        seconds[schedule, pretrain] = [timings.cell(config, arm) for arm in config.arms]
    assert seconds["mixed", None] == [8.0, 8.0]  # 2 epochs x 4 steps of 16 real images
    assert seconds["pretrain-finetune", None] == [8.0, 16.0]  # real-only arms do not pre-train
    assert seconds["pretrain-finetune", 5] == [8.0, 28.0]


def test_cells_run_seed_by_seed_and_fold_by_fold_so_a_stopped_sweep_leaves_paired_folds(tmp_path):
    from augment.mixing import MixSpec
    from augment.reuse import todo
    from augment.sweep import SweepConfig, build_arms
    from wgan.data import DataConfig

    base = TrainSettings(epochs=1)
    config = SweepConfig(generators=None, arms=build_arms([MixSpec(0), MixSpec(1)], base, False), folds=[0, 1],
                         seeds=[0, 1], base=base, data=DataConfig(split="cv", resolution=32), out=tmp_path)
    assert [(arm.name, fold, seed) for arm, fold, seed in todo(config)][:4] == [
        ("r=0", 0, 0), ("r=1", 0, 0), ("r=0", 1, 0), ("r=1", 1, 0)]


def test_cost_times_the_step_with_the_settings_autocast(monkeypatch):
    from augment import cost

    seen = []
    real_factory = cost.autocast_factory
    monkeypatch.setattr(cost, "autocast_factory", lambda device, amp: seen.append(amp) or real_factory(device, amp))
    for amp in (False, True):
        step, forward = cost._time_model(TrainSettings(model="cnn", batch_size=4, amp=amp), 32, 4)
        assert step > 0 and forward > 0
    assert seen == [False, True]


def test_one_hot_soft_targets_train_like_the_labels_they_encode():
    """The soft-label loss is the cross-entropy it generalises: one-hot rows, class weights
    included, give the same training as the class indices."""
    data = synthetic_set(48, size=32)
    settings = TrainSettings(epochs=2, batch_size=16, class_weighted=True)
    one_hot = torch.nn.functional.one_hot(data.labels, 4).float()
    trained = [fit(build_model("cnn", 32, seed=0), data, data, settings, torch.device("cpu"), progress=False,
                   targets=targets).model.state_dict() for targets in (None, one_hot)]
    for name, value in trained[0].items():
        torch.testing.assert_close(trained[1][name], value, rtol=1e-4, atol=1e-5)


def test_soft_targets_replace_the_labels_and_their_mass_sets_the_class_weights():
    from dataclasses import replace

    from classifier.engine import class_weights

    data = synthetic_set(48, size=32)
    relabelled = replace(data, labels=(data.labels + 1) % 4)  # every image taught as the next class
    settings = TrainSettings(epochs=2, batch_size=16, dihedral=False)
    by_labels = fit(build_model("cnn", 32, seed=0), relabelled, data, settings, torch.device("cpu"), progress=False)
    by_targets = fit(build_model("cnn", 32, seed=0), data, data, settings, torch.device("cpu"), progress=False,
                     targets=torch.nn.functional.one_hot(relabelled.labels, 4).float())
    for name, value in by_labels.model.state_dict().items():
        torch.testing.assert_close(by_targets.model.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    mass = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    labels = torch.tensor([0, 0, 1, 2, 3])  # by count FRI 2, FRII 1; by probability mass FRI 1, FRII 2
    torch.testing.assert_close(class_weights(labels, 4, mass), 5 / (4 * torch.tensor([1.0, 2, 1, 1])))
    with pytest.raises(ValueError, match="one row of class probabilities per image"):
        fit(build_model("cnn", 32, seed=0), data, data, settings, torch.device("cpu"), progress=False,
            targets=torch.zeros(5, 4))


def test_sharded_soft_loss_averages_to_the_single_process_loss():
    from classifier.engine import _loss
    from wgan.distributed import Shard

    logits, targets = torch.randn(7, 4), torch.softmax(torch.randn(7, 4), 1)
    weights = torch.tensor([2.0, 0.5, 1.0, 1.5])
    single = _loss(logits, targets, targets, weights, Shard())
    shares = [_loss(Shard(r, 3).take(logits), Shard(r, 3).take(targets), targets, weights, Shard(r, 3)) for r in range(3)]
    torch.testing.assert_close(sum(shares) / 3, single)


def test_teacher_labels_are_the_reference_classifiers_probabilities(generator, tmp_path):
    from augment import filtering
    from classifier.engine import predict

    result = run([*ONE_CELL, "--checkpoint", generator, "--generated-labels", "teacher", "--schedule",
                  "pretrain-finetune"], tmp_path)
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert cell["identity"]["generated_labels"] == "teacher"
    assert "generated images labelled by teacher" in (tmp_path / "report.md").read_text()
    (teacher,) = (tmp_path / "filters").glob("classifier-*.pt")  # the same real-only classifier the filter uses
    mixed = synthetic_set(12, size=32)
    mixed.source[6:] = GENERATED_SOURCE
    model = load_classifier(teacher, torch.device("cpu")).model
    targets = filtering.teacher_targets(model, mixed, 6, torch.device("cpu"), tta=True)
    assert torch.equal(targets[:6], torch.nn.functional.one_hot(mixed.labels[:6], 4).float())
    torch.testing.assert_close(targets[6:], predict(model, mixed.images[6:], torch.device("cpu"), tta=True))
    # the default labels leave the identity as it was before the option existed (older cells stay
    # reusable); a filtered study reusing this folder takes its reference classifier instead of training one
    result = run([*ONE_CELL, "--checkpoint", generator, "--fidelity-filter", "0.9", "--reuse-from", str(tmp_path)],
                 tmp_path / "plain")
    plain = json.loads((tmp_path / "plain" / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert result.exit_code == 0 and "generated_labels" not in plain["identity"]
    assert not (tmp_path / "plain" / "filters").exists()


@pytest.mark.parametrize("extra, message", [
    (["--control", "shuffled-labels"], "would give the control's shuffled-label images their class information back"),
    (["--pool", "fresh-per-epoch"], "teacher labels need the fixed pool"),
])
def test_teacher_labels_refuse_what_they_cannot_serve(generator, tmp_path, extra, message):
    result = run([*ONE_CELL, "--checkpoint", generator, "--generated-labels", "teacher", *extra], tmp_path)
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cells").exists()


def test_the_reference_classifier_can_train_for_other_epochs_than_the_cells(generator, tmp_path):
    # the filter judged by a 1-epoch real-only classifier, kept under filters/ of the first study
    assert run([*ONE_CELL, "--checkpoint", generator, "--fidelity-filter", "0.9"], tmp_path / "short").exit_code == 0
    short = json.loads((tmp_path / "short" / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert "reference_epochs" not in short["identity"]  # as long as the cells: the identity from before the option
    longer = ["--ratio", "1", "--folds", "0", "--epochs", "2", "--workers", "1", "--no-baselines"]
    result = run([*longer, "--checkpoint", generator, "--fidelity-filter", "0.9", "--reference-epochs", "1",
                  "--reuse-from", str(tmp_path / "short")], tmp_path / "long")
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "long" / "cells" / "r=1" / "fold0-seed0.json").read_text())
    assert cell["identity"]["reference_epochs"] == 1 and cell["identity"]["base"]["epochs"] == 2
    assert not (tmp_path / "long" / "filters").exists()  # the 1-epoch classifier was found, not trained again
    assert "(reference classifier: 1 epochs)" in (tmp_path / "long" / "report.md").read_text()
    # without the option a 2-epoch study trains its own 2-epoch reference classifier
    assert run([*longer, "--checkpoint", generator, "--fidelity-filter", "0.9", "--reuse-from", str(tmp_path / "short")],
               tmp_path / "own").exit_code == 0
    assert len(list((tmp_path / "own" / "filters").glob("classifier-*.pt"))) == 1


def test_reference_epochs_without_a_reference_classifier_are_refused(generator, tmp_path):
    result = run([*ONE_CELL, "--checkpoint", generator, "--reference-epochs", "1"], tmp_path)
    assert result.exit_code != 0 and "reference epochs only apply" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cells").exists()


def _config(generator, **overrides):
    from augment.sweep import SweepConfig, build_arms

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
