"""The mixing protocol's options: fresh-per-batch images, the class-fidelity filter, the
shuffled-label control, the cost estimate and --dry-run, and cells that fail without stopping
the others."""

import json

import pytest
import torch
from click.testing import CliRunner

from augment import pool
from classifier.engine import TrainSettings, fit
from classifier.export import load_classifier
from classifier.models import build_model
from commands.augment import augment_eval_command
from tests.helpers import synthetic_set
from tests.test_augment_mixing import tiny_generator
from wgan.data import GENERATED_SOURCE


def run(args, out):
    return CliRunner().invoke(augment_eval_command, [*args, "--resolution", "32", "--out", str(out), "--no-progress"])


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    from tests.test_augment_eval import make_generator

    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


ONE_CELL = ["--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "1", "--no-baselines"]


pytestmark = pytest.mark.usefixtures("one_epoch_references_pass")  # tests/conftest.py


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
    from augment.sweep_config import SweepConfig, build_arms
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
    resumed = config.cell_path(next(a for a in config.arms if a.name == "r=1"), 0, 1)
    resumed.write_text(json.dumps({"seconds": 5.0, "resumed_after_epoch": 580}))  # its last run's time only
    assert estimate(config).seconds_per_cell == pytest.approx((15.0 + 100.0) / 2)


def test_the_compute_line_sums_each_device_kind_over_its_workers():
    from augment.cost import Cost, describe_spent, spent

    finished = [{"device": "cpu", "host": "a", "seconds": 3600.0, "cpu_seconds": 3600.0},
                {"device": "cpu", "host": "b", "seconds": 1800.0, "cpu_seconds": 1800.0},
                {"device": "cpu", "host": "b", "seconds": 360.0},  # recorded before cells kept their CPU time
                {"device": "NVIDIA H100", "host": "g", "seconds": 720.0, "cpu_seconds": 700.0}]
    rows = {r["device"]: r for r in spent(finished)}
    assert rows["cpu"] == {"device": "cpu", "cells": 3, "hosts": 2, "wall_hours": pytest.approx(1.6),
                           "cpu_hours": pytest.approx(1.5), "cells_without_cpu_time": 1, "cells_resumed": 0}
    assert rows["NVIDIA H100"]["gpu_hours"] == pytest.approx(0.2) and "gpu_hours" not in rows["cpu"]
    line = describe_spent(spent(finished))
    assert line.startswith("NVIDIA H100: 1 cells on 1 host, 0.20 GPU-hours, 0.19 CPU-hours (0.20 hours of cell wall")
    assert "cpu: 3 cells on 2 hosts, 1.50 CPU-hours in the 2 cells that recorded it (1.60 hours of cell wall" in line
    older = [{"device": "cpu", "seconds": 7200.0}]  # before cells kept their host and CPU time
    assert describe_spent(spent(older)) == "cpu: 1 cells, 2.00 hours of cell wall time (CPU time not recorded)"
    resumed = [{"device": "cpu", "seconds": 360.0, "cpu_seconds": 360.0, "resumed_after_epoch": 500}]
    assert describe_spent(spent(resumed)) == ("cpu: 1 cells, 0.10 CPU-hours (0.10 hours of cell wall time); "
                                              "1 resumed after an interruption count only their last run")
    # a cluster whose size this process does not know gets no wall-time guess
    assert Cost(4, 4, 60.0, "timed").describe(None).endswith("4.0 CPU-minutes, divided among the cluster's workers")
    assert Cost(4, 4, 60.0, "timed").describe(2).endswith("about 2.0 minutes with 2 workers")


def test_cost_counts_the_pretraining_epochs_of_arms_that_add_images(tmp_path):
    from augment import cost
    from augment.mixing import MixSpec
    from augment.sweep_config import SweepConfig, build_arms
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
    from augment.sweep_config import SweepConfig, build_arms
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


class Brightness(torch.nn.Module):
    """A hand-made reference classifier: bright images are class 0, dark ones class 1, each with
    probability e^5 / (e^5 + e^-5 + 2) = 0.9867."""

    def forward(self, x):
        m = x.mean((1, 2, 3))
        return torch.stack([5 * m, -5 * m, torch.zeros_like(m), torch.zeros_like(m)], 1)


def test_the_fidelity_filter_drops_what_the_reference_confidently_puts_in_another_class():
    from augment.filtering import accept_by_fidelity

    bright, dark = torch.full((1, 8, 8), 255, dtype=torch.uint8), torch.zeros((1, 8, 8), dtype=torch.uint8)
    images, labels = torch.cat([bright, bright, dark, dark]), torch.tensor([0, 1, 1, 2])
    accept = accept_by_fidelity(Brightness(), 0.5, torch.device("cpu"), tta=False)
    # agrees, confidently another class, agrees, confidently another class
    assert accept(images, labels).tolist() == [True, False, True, False]
    lenient = accept_by_fidelity(Brightness(), 0.99, torch.device("cpu"), tta=False)
    assert lenient(images, labels).tolist() == [True, True, True, True]  # no other class that sure


def test_a_stopped_cell_goes_on_from_its_saved_epoch_to_the_record_of_an_unstopped_one(generator, tmp_path, monkeypatch):
    """A study stopped mid-cell (end of a session, a preempted job) loses at most `every` epochs of
    it: the next run resumes the cell's training state, writes the same record, and removes the state."""
    import functools

    from augment import sweep
    from classifier.fitstate import FitState

    monkeypatch.setattr(sweep, "FitState", functools.partial(FitState, every=1))
    args = ["--ratio", "1", "--folds", "0", "--epochs", "3", "--workers", "1", "--no-baselines", "--checkpoint", generator,
            "--fidelity-filter", "0.5"]
    assert run(args, tmp_path / "straight").exit_code == 0
    real_fit = sweep.fit

    def stopped(*a, log=None, **k):  # the cell's own training dies after its second epoch, before saving it
        def dies(epoch, row):
            log(epoch, row)
            if epoch == 2:
                raise RuntimeError("worker stopped (injected)")
        return real_fit(*a, log=dies, **k)

    monkeypatch.setattr(sweep, "fit", stopped)
    out = tmp_path / "stopped"
    assert run(args, out).exit_code == 1
    assert sorted(p.relative_to(out / "partial").as_posix() for p in (out / "partial").rglob("*.pt")) == [
        "r=0/fold0-seed0.train.pt", "r=1/fold0-seed0.train.pt"]
    monkeypatch.setattr(sweep, "fit", real_fit)
    result = run(args, out)
    assert result.exit_code == 0, result.output
    for arm in ("r=0", "r=1"):
        straight, resumed = (json.loads((folder / "cells" / arm / "fold0-seed0.json").read_text())
                             for folder in (tmp_path / "straight", out))
        assert resumed.pop("resumed_after_epoch") == 1 and "resumed_after_epoch" not in straight
        for key in ("test", "best_epoch", "valid_accuracy", "data_fingerprints", "identity", "generated_counts"):
            assert resumed[key] == straight[key], (arm, key)
    assert not list((out / "partial").rglob("*.pt")) and not list((out / "filters").glob("*.partial.pt"))
    stats = (out / "tensorboard" / "r=1" / "fold0-seed0" / "stats.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in stats] == [1, 2, 3]  # the lost epoch 2 logged once


def test_a_stream_of_fresh_images_goes_on_where_its_state_was_taken(cache_dir):
    gen = tiny_generator()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    a = pool.Stream(gen, seed=1, shuffled_mix=[1, 1, 1, 1])
    a(labels)
    state = a.state_dict()
    expected = a(labels)
    b = pool.Stream(gen, seed=1, shuffled_mix=[1, 1, 1, 1])
    b.load_state_dict(state)
    assert torch.equal(b(labels), expected)
