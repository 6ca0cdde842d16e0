import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from classifier.engine import (
    TrainSettings,
    class_weights,
    epoch_order,
    evaluate,
    fit,
    recalibrate_batchnorm,
)
from classifier.export import load_classifier
from classifier.metrics import classification_report, confusion_matrix, roc_auc_one_vs_rest
from classifier.models import BATCHNORM_MODELS, MODELS, build_model
from commands.classifier import classifier_train_command
from tests.helpers import synthetic_set

NAMES = ["FRI", "FRII", "Compact", "Bent"]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("resolution", [32, 64])
def test_models_shapes_and_gradients(name, resolution):
    torch.manual_seed(0)
    model = build_model(name, resolution)
    logits = model(torch.randn(3, 1, resolution, resolution))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", ["vit", "vit-conv"])
def test_vit_attention_maps_shape_and_rows_sum_to_one(name):
    model = build_model(name, 32).eval()
    maps = model.attention_maps(torch.randn(2, 1, 32, 32))
    assert maps.shape == (2, 6, 3, 65, 65)  # 8 x 8 patches + class token
    assert torch.allclose(maps.sum(-1), torch.ones(2, 6, 3, 65), atol=1e-5)
    assert (maps >= 0).all()


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_a_convolutional_stem_gives_the_patch_grid_with_local_receptive_fields(resolution):
    from classifier.models import ViT, conv_stem

    torch.manual_seed(0)
    patch, x = resolution // 8, torch.rand(1, 1, resolution, resolution, requires_grad=True)
    stem = conv_stem(patch, 192).eval()
    tokens = stem(x)
    assert tokens.shape == (1, 192, 8, 8)
    tokens[0, :, 0, 0].sum().backward()  # the first token sees only the image's corner, not the whole image
    seen = x.grad[0, 0].abs() > 0
    assert seen[:patch, :patch].any() and not seen[2 * patch :, :].any() and not seen[:, 2 * patch :].any()
    with pytest.raises(ValueError, match="power-of-two patch size, not 6"):
        conv_stem(6, 192)
    with pytest.raises(ValueError, match="unknown ViT stem 'hybrid'"):
        ViT(32, stem="hybrid")


def test_warm_up_rises_linearly_then_decays_to_zero():
    from classifier.engine import make_optimizer

    model = torch.nn.Linear(2, 2)
    opt, schedule = make_optimizer(model, TrainSettings(epochs=10, lr=1e-3, warmup_epochs=4), steps_per_epoch=5)
    rates = []
    for _ in range(50):
        rates.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    assert rates[:3] == pytest.approx([1e-3 / 20, 2e-3 / 20, 3e-3 / 20]) and rates[19] == pytest.approx(1e-3)
    assert all(a > b for a, b in zip(rates[20:], rates[21:])) and rates[-1] < 1e-5  # cosine from its peak


def test_unknown_model_and_too_small_input():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("alexnet", 64)
    with pytest.raises(ValueError, match="at least 32 px"):
        build_model("cnn", 16)


def test_report_against_hand_computed_confusion_matrix():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    preds = np.array([0, 0, 1, 1, 1, 2, 0, 2, 3, 1])
    probs = np.eye(4)[preds] * 0.7 + 0.075  # argmax = preds, rows sum to 1
    report = classification_report(labels, probs, NAMES)
    assert report["confusion_matrix"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 1, 0, 1]]
    assert report["accuracy"] == pytest.approx(0.7)
    fri = report["per_class"]["FRI"]  # TP 2, FP 1 (a Compact), FN 1
    assert (fri["precision"], fri["recall"], fri["f1"], fri["support"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 3))
    frii = report["per_class"]["FRII"]  # TP 2, FP 2, FN 0
    assert (frii["precision"], frii["recall"], frii["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    bent = report["per_class"]["Bent"]  # TP 1, FP 0, FN 1
    assert (bent["precision"], bent["recall"], bent["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    compact_f1 = report["per_class"]["Compact"]["f1"]  # TP 2, FP 0, FN 1 -> P 1, R 2/3
    assert compact_f1 == pytest.approx(0.8)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.8 + 2 / 3) / 4)
    # Brier by hand: a right row costs (1-0.775)^2 + 3*0.075^2 = 0.0675; a wrong row
    # (1-0.075)^2 + 0.775^2 + 2*0.075^2 = 1.4675; 7 right, 3 wrong.
    assert report["brier"] == pytest.approx((7 * 0.0675 + 3 * 1.4675) / 10)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores, positive = rng.random(40).round(1), rng.random(40) < 0.4  # rounding makes ties
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in scores[positive] for n in scores[~positive]]
    assert roc_auc_one_vs_rest(scores, positive) == pytest.approx(np.mean(pairs))
    assert np.isnan(roc_auc_one_vs_rest(scores, np.zeros(40, bool)))


def test_confusion_matrix_counts():
    assert confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]), 2).tolist() == [[0, 1], [1, 1]]


def test_class_weights_and_oversampling_balance_classes():
    labels = torch.tensor([0] * 60 + [1] * 20 + [2] * 10 + [3] * 10)
    weights = class_weights(labels, 4)
    assert torch.allclose(weights * torch.bincount(labels), torch.full((4,), 25.0))
    order = epoch_order(labels, TrainSettings(oversample=True), torch.Generator().manual_seed(0), 4)
    counts = torch.bincount(labels[order], minlength=4).float()
    assert len(order) == 100 and (counts > 12).all() and (counts < 40).all()
    plain = epoch_order(labels, TrainSettings(), torch.Generator().manual_seed(0), 4)
    assert sorted(plain.tolist()) == list(range(100))


def test_fit_is_reproducible_and_selects_on_validation():
    train, valid = synthetic_set(64, 32, seed=0), synthetic_set(32, 32, seed=1)
    settings = TrainSettings(epochs=3, batch_size=16, seed=3)
    a = fit(build_model("cnn", 32, seed=3), train, valid, settings, torch.device("cpu"), progress=False)
    b = fit(build_model("cnn", 32, seed=3), train, valid, settings, torch.device("cpu"), progress=False)
    for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(p, q)
    scores = [row["valid/accuracy"] for row in a.history]
    assert a.best_epoch == int(np.argmax(scores)) + 1
    assert evaluate(a.model, valid, torch.device("cpu"))["accuracy"] == pytest.approx(scores[a.best_epoch - 1])


def test_batchnorm_recalibration_sets_the_plain_average_over_the_images():
    images = torch.randint(0, 256, (48, 8, 8), dtype=torch.uint8)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Flatten())
    norm = model[0]
    norm.running_mean.fill_(5.0), norm.running_var.fill_(9.0)  # stale statistics, as after fast training
    assert recalibrate_batchnorm(model, images, torch.device("cpu"), batch_size=16)
    x = images.float() / 127.5 - 1  # to_unit_range
    batches = x.reshape(3, 16 * 64)  # the three batches of 16 images
    assert norm.running_mean.item() == pytest.approx(x.mean().item(), abs=1e-5)
    assert norm.running_var.item() == pytest.approx(batches.var(dim=1).mean().item(), abs=1e-5)  # mean of batch variances
    assert norm.momentum == 0.1 and not model.training
    plain = build_model("cnn", 32, seed=0)  # LayerNorm only: nothing to do
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    assert not recalibrate_batchnorm(plain, images, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())


def test_recalibrated_batchnorm_statistics_are_what_fit_returns_and_enter_the_identity():
    train, valid = synthetic_set(64, 32, seed=0), synthetic_set(32, 32, seed=1)
    settings = TrainSettings(model="vit-conv", epochs=1, batch_size=16, batchnorm_stats="recalibrated")
    runs = {stats: fit(build_model("vit-conv", 32, seed=0), train, valid, replace(settings, batchnorm_stats=stats),
                       torch.device("cpu"), progress=False).model for stats in ("running", "recalibrated")}
    for stats, model in runs.items():
        fresh = copy.deepcopy(model)
        recalibrate_batchnorm(fresh, train.images, torch.device("cpu"))
        same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(model.buffers(), fresh.buffers()) if a.is_floating_point())
        assert same == (stats == "recalibrated")  # the best epoch's weights with the statistics of those weights
    assert settings.identity()["batchnorm_stats"] == "recalibrated"
    assert "batchnorm_stats" not in replace(settings, batchnorm_stats="running").identity()  # as every earlier run
    assert replace(settings, batchnorm_stats="running").effective()["batchnorm_stats"] == "running"  # reports say it
    assert "batchnorm_stats" not in TrainSettings(model="cnn").identity()  # no BatchNorm: the field changes nothing


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_models_registered_with_batchnorm_are_the_ones_that_have_it(name):
    has = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in build_model(name, 64).modules())
    assert has == (name in BATCHNORM_MODELS)


def test_classifier_train_cli_writes_export_and_metrics(tmp_path):
    out = tmp_path / "clf"
    result = CliRunner().invoke(classifier_train_command, ["--resolution", "32", "--epochs", "2", "--out", str(out),
                                                           "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "Bent" in result.output
    assert sorted(p.name for p in out.glob("[!.]*")) == ["fold0", "summary.json"]  # one fold: the layout of five
    out = out / "fold0"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["n"] == 400 and metrics["counts"]["train"]["FRII"] == 659
    assert set(metrics["test"]["per_class"]) == set(NAMES) and 1 <= metrics["best_epoch"] <= 2
    assert (out / "confusion_matrix.png").stat().st_size > 0
    loaded = load_classifier(out / "model.pt")
    assert loaded.name == "cnn" and loaded.resolution == 32 and loaded.class_names == NAMES


def test_classifier_train_bad_input(tmp_path):
    result = CliRunner().invoke(classifier_train_command, ["--resolution", "48", "--out", str(tmp_path / "x"),
                                                           "--no-progress"])
    assert result.exit_code != 0 and "must divide" in result.output and "Traceback" not in result.output


def test_summary_over_folds():
    from classifier.crossval import summarize

    reports = [classification_report(np.array([0, 1, 2, 3]), np.eye(4)[[0, 1, 2, p]], NAMES) for p in (3, 0)]
    summary = summarize(reports)
    assert summary["accuracy"] == pytest.approx({"mean": 0.875, "std": np.std([1.0, 0.75], ddof=1)})
    assert summary["per_class"]["Bent"]["recall"]["mean"] == pytest.approx(0.5)


def test_classifier_train_over_two_folds_resumes_finished_folds(tmp_path):
    args = ["--resolution", "32", "--epochs", "1", "--folds", "1,0", "--out", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(classifier_train_command, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["folds"] == [0, 1] and summary["n_folds"] == 2
    assert sorted(p.name for p in tmp_path.glob("fold*")) == ["fold0", "fold1"]
    stamp = (tmp_path / "fold0" / "model.pt").stat().st_mtime_ns
    assert CliRunner().invoke(classifier_train_command, args).exit_code == 0
    assert (tmp_path / "fold0" / "model.pt").stat().st_mtime_ns == stamp  # finished fold not retrained
    other = args[:3] + ["2"] + args[4:]  # --epochs 2 into the same folder
    refused = CliRunner().invoke(classifier_train_command, other)
    assert refused.exit_code != 0 and "holds a classifier trained with settings.epochs = 1, this run has 2" in refused.output
    assert (tmp_path / "fold0" / "model.pt").stat().st_mtime_ns == stamp and "Traceback" not in refused.output
    assert CliRunner().invoke(classifier_train_command, [*other, "--overwrite"]).exit_code == 0
    assert json.loads((tmp_path / "fold0" / "metrics.json").read_text())["settings"]["epochs"] == 2


def test_a_single_fold_rerun_reports_the_finished_run_or_refuses_other_settings(tmp_path):
    args = ["--resolution", "32", "--epochs", "1", "--folds", "0", "--out", str(tmp_path), "--no-progress"]
    assert CliRunner().invoke(classifier_train_command, args).exit_code == 0
    stamp = (tmp_path / "fold0" / "model.pt").stat().st_mtime_ns
    again = CliRunner().invoke(classifier_train_command, args)
    assert again.exit_code == 0 and "holds this run already" in again.output and "test accuracy" in again.output
    assert (tmp_path / "fold0" / "model.pt").stat().st_mtime_ns == stamp
    inert = CliRunner().invoke(classifier_train_command, [*args, "--batchnorm-stats", "running"])  # the CNN has none
    assert inert.exit_code == 0 and "holds this run already" in inert.output
    refused = CliRunner().invoke(classifier_train_command, [*args, "--class-weighted"])
    assert refused.exit_code != 0 and "settings.class_weighted = False, this run has True" in refused.output
    refused = CliRunner().invoke(classifier_train_command, [*args, "--warmup-epochs", "5", "--weight-decay", "0.05"])
    assert refused.exit_code != 0 and "settings.weight_decay = 0.0001, this run has 0.05" in refused.output


def test_rotation_augmentation_is_applied_and_seeded():
    train, valid = synthetic_set(32, 32, seed=0), synthetic_set(16, 32, seed=1)

    def weights(rotate):
        settings = TrainSettings(epochs=1, batch_size=16, rotate=rotate, seed=0)
        return fit(build_model("cnn", 32, seed=0), train, valid, settings, torch.device("cpu"), progress=False).model

    plain, rotated, again = weights(False), weights(True), weights(True)
    assert not torch.equal(plain.head[-1].weight, rotated.head[-1].weight)
    assert torch.equal(rotated.head[-1].weight, again.head[-1].weight)


def test_generated_images_can_enter_as_drawn_while_real_ones_are_augmented():
    """--generated-augment none: the same random draws, applied to the real images only."""
    import torch

    from classifier.engine import TrainSettings, _augment

    x = torch.rand(6, 1, 16, 16) * 2 - 1
    keep = torch.tensor([False, True, False, True, False, False])
    settings = TrainSettings(dihedral=True, rotate=True)
    both = _augment(x, settings, torch.Generator().manual_seed(0), None)
    real_only = _augment(x, settings, torch.Generator().manual_seed(0), keep)
    assert torch.equal(real_only[~keep], both[~keep]) and torch.equal(real_only[keep], x[keep])
    assert not torch.equal(both[keep], x[keep])  # they would have been augmented


def test_the_literature_split_writes_its_one_partition_into_the_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(classifier_train_command, ["--split", "literature", "--resolution", "32", "--epochs", "1",
                                                           "--no-progress"])
    assert result.exit_code == 0, result.output
    out = Path("runs") / "classifier-cnn-literature-s0"
    assert (out / "model.pt").exists() and f"wrote {out}" in result.output and not list(out.glob("fold*"))


def test_class_weighting_changes_training_only_where_the_classes_are_imbalanced():
    """--class-weighted must reach the loss: on imbalanced labels one epoch ends at other weights
    than without it; on balanced labels (every weight 1) at the same ones."""
    balanced, valid = synthetic_set(64, 32, seed=0), synthetic_set(16, 32, seed=1)
    keep = (balanced.labels == 0).numpy() | (np.arange(len(balanced)) < 16)  # class 0: 16 images, the others 4
    imbalanced = balanced.subset(keep, "imbalanced")
    assert len(set(torch.bincount(imbalanced.labels).tolist())) > 1

    def trained(data, weighted):
        settings = TrainSettings(epochs=1, batch_size=16, seed=3, class_weighted=weighted, dihedral=False)
        return fit(build_model("cnn", 32, seed=3), data, valid, settings, torch.device("cpu"), progress=False).model

    def same(a, b):
        return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))

    assert not same(trained(imbalanced, True), trained(imbalanced, False))
    assert same(trained(balanced, True), trained(balanced, False))

