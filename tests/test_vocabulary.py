"""One option vocabulary across the commands: the same concept has the same name and kind."""

import importlib

import click
import pytest

ENTRY_POINTS = {
    "wgan-train": "commands.wgan:train_command", "wgan-sample": "commands.wgan:sample_command",
    "wgan-select": "commands.wgan:select_command", "wgan-eval": "commands.classifier:eval_command",
    "classifier-train": "commands.classifier:classifier_train_command",
    "augment-eval": "commands.augment:augment_eval_command", "augment-report": "commands.augment:report_command",
    "augment-cml": "commands.augment:cml_command", "augment-tools": "commands.study_tools:tools_group",
    "radiogan-release": "commands.release:release_group", "wgan-data": "commands.data:data_group",
}
# flags that do something once rather than set how something is done; every other on/off
# option is a --x/--no-x pair
ACTIONS = {"--version", "--dry-run", "--overwrite", "--grid", "--quick", "--promote", "--fold-default", "--clear"}
RETIRED = {"--eval-extractor", "--eval-n", "--run-dir-root", "--output", "--outdir"}
# commands that run long enough to report progress
LONG = {"wgan-train", "wgan-sample", "wgan-eval", "classifier-train", "augment-eval", "augment-cml"}


def commands() -> dict[str, click.Command]:
    found = {}
    for name, target in ENTRY_POINTS.items():
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        found[name] = command
        for sub_name, sub in getattr(command, "commands", {}).items():
            found[f"{name} {sub_name}"] = sub
    return found


def options(command: click.Command) -> dict[str, click.Option]:
    return {name: p for p in command.params if isinstance(p, click.Option) for name in p.opts}


def test_the_table_names_every_console_script():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "setup.cfg").read_text()
    scripts = text.split("console_scripts =")[1].split("\n\n")[0].strip().splitlines()
    assert {line.split("=")[0].strip() for line in scripts} == set(ENTRY_POINTS)


@pytest.mark.parametrize("name, command", sorted(commands().items()))
def test_one_vocabulary(name, command):
    found = options(command)
    flags = {o for o, p in found.items() if p.is_flag and not p.secondary_opts and p.opts[0] == o}
    assert flags <= ACTIONS, f"{name}: on/off settings must be --x/--no-x pairs: {sorted(flags - ACTIONS)}"
    assert not set(found) & RETIRED, f"{name}: retired names {sorted(set(found) & RETIRED)}"
    counts = [o for o in found if o == "--n" or o.endswith("-n")]
    assert counts in ([], ["--n"]) and (not counts or name == "wgan-sample"), \
        f"{name}: --n is a total (wgan-sample); counts per class are --...-per-class: {counts}"
    if "--fold" in found:
        assert name == "wgan-train", f"{name}: one fold is --fold only where a command takes exactly one"
    if name in LONG:
        assert "--progress" in found and found["--progress"].secondary_opts == ["--no-progress"], name
    outputs = [o for o in found if o == "--out" or o.startswith("--out-") or o in ("--outdir", "--output-dir")]
    assert outputs in ([], ["--out"]), f"{name}: an output folder or file is --out: {outputs}"


def test_retired_names_still_work_hidden():
    from commands.classifier import eval_command
    from commands.wgan import train_command

    assert train_command.renamed == {"--eval-extractor": "--extractor", "--eval-n": "--eval-n-per-class"}
    assert eval_command.renamed == {"--n": "--n-per-class"}
    for command in (train_command, eval_command):
        for old, new in command.renamed.items():
            assert new in options(command) and old not in options(command)
