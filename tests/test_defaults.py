"""Defaults live in the library's dataclasses: a command run without options builds exactly the
library's default configuration, apart from what the command decides on purpose (listed here)."""

import json
from dataclasses import asdict

from click.testing import CliRunner

from classifier.engine import TrainSettings
from commands.classifier import _classifier_run, classifier_train_command
from commands.wgan import train_command
from commands.wgan_train import apply_schedule
from wgan.config import TrainConfig
from wgan.released import EXTRACTOR

# what wgan-train sets itself: cross-validation (the data loader's default is the literature
# split), the preset's image size, bf16 where the machine has it natively, this machine's threads,
# and the released extractor's installed path (the library's None means that file)
WGAN_TRAIN_OWN = {"data.split", "data.resolution", "amp", "threads", "eval.extractor"}


def differences(got, want, prefix=""):
    if isinstance(got, dict) and isinstance(want, dict):
        return {d for key in set(got) | set(want) for d in differences(got.get(key), want.get(key), f"{prefix}{key}.")}
    return set() if got == want else {prefix.rstrip(".")}


def test_wgan_train_without_options_trains_the_library_default_config():
    result = CliRunner().invoke(train_command, ["--dry-run"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert differences(printed, json.loads(json.dumps(asdict(TrainConfig())))) <= WGAN_TRAIN_OWN
    assert printed["data"]["split"] == "cv" and printed["iters"] == TrainConfig().iters
    assert printed["eval"]["extractor"] == str(EXTRACTOR)


def test_the_periodic_evaluation_is_in_the_config_and_kept_on_resume():
    result = CliRunner().invoke(train_command, ["--dry-run", "--eval-every", "500", "--eval-n-per-class", "50"])
    evaluation = json.loads(result.stdout)["eval"]
    assert evaluation == {"every": 500, "n_per_class": 50, "extractor": str(EXTRACTOR), "tstr_epochs": 0}
    cfg = TrainConfig.from_json(result.stdout)
    assert apply_schedule(cfg, {"eval_every": 0}, given=set()).eval.every == 500  # not given: the run's own
    assert apply_schedule(cfg, {"eval_every": 0}, given={"eval_every"}).eval.every == 0
    old = json.loads(result.stdout)
    del old["eval"]  # a config.json from before the evaluation was part of it
    assert TrainConfig.from_json(json.dumps(old)).eval.every == 0


def test_classifier_train_without_options_trains_the_library_default_settings():
    ctx = classifier_train_command.make_context("classifier-train", [])
    run = _classifier_run(ctx.params, 0)
    assert asdict(run.settings) == asdict(TrainSettings()) | {"amp": run.settings.amp}  # amp: the machine's bf16
