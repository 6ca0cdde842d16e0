"""An augmentation study: every input checked before any training, then the sweep, the summary
and the report files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from wgan.atomic import write_text
from wgan.compat import check_fits
from wgan.data import ImageSet, load_dataset, record_splits
from wgan.sampling import LoadedGenerator, load_generator

from . import analysis, leakage, mixing, plan, report
from .cost import spent
from .engine import Engine
from .intervals import score_names
from .labels import attach_test_labels
from .reuse import check_reuse
from .shared_cells import cell_files
from .sweep import run_sweep
from .sweep_config import SweepConfig

REFERENCE_ARM = mixing.MixSpec().label  # "r=0": real images only, base settings


@dataclass
class Study:
    config: SweepConfig
    command: str
    generator_hashes: dict[str, str] | None  # fold -> generator content hash
    leakage: dict | None  # fold -> what that fold's generator saw of the test and validation images
    generator_releases: dict[str, list] | None = None  # fold -> pinned release names (None: not a release)


def prepare(config: SweepConfig, command: str, overwrite: bool = False) -> Study:
    """Validate everything (generators, data, output folder) before any training; raises ValueError/OSError."""
    for path in {p for replicas in (config.generators or {}).values() for p in replicas}:
        if not path.is_file():
            raise ValueError(f"{path}: no generator export; train one with wgan-train or pass --checkpoint")
    plan.check_folder(config.out, config.plan)  # before --overwrite could delete the cells of its first version
    if not overwrite:
        check_reuse(config)  # read-only here; run() deletes differing cells under the folder's lock
    test = load_dataset(replace(config.data, subset="test"))
    for arm in config.arms:  # a per-class ratio naming a class the data lacks fails here, not in a worker
        mixing.check_classes(arm.spec, test.class_names)
    if config.plan:  # every arm and score the plan names exists, before any training
        plan.check_arms(config.plan, [arm.name for arm in config.arms])
        plan.check_scores(config.plan, score_names(list(test.class_names)))
    if not config.generators:
        return Study(config, command, None, None)
    valids = {f: load_dataset(replace(config.data, fold=f, subset="valid")) for f in config.folds}
    checks = {fold: [_check_generator(config, fold, path, test, valids[fold]) for path in replicas]
              for fold, replicas in config.generators.items()}
    # one hash per fold, or a list with replicas; what a fold's generators saw is summed over them
    hashes = {str(fold): [g.file_hash for g, _ in c] if len(c) > 1 else c[0][0].file_hash for fold, c in checks.items()}
    releases = {str(fold): [g.release for g, _ in c] for fold, c in checks.items()}
    leaks = {str(fold): leakage.combine([leak for _, leak in c]) for fold, c in checks.items()}
    extra = {fold: max(v["dropped_train_images_seen"].values()) for fold, v in leaks.items()
             if v.get("dropped_train_images_seen")}
    if extra and not config.allow_generator_extra_data:
        fold, n = next(iter(extra.items()))
        raise ValueError(f"--real-fraction {config.real_fraction:g} drops training images that the generators "
                         f"learned from (fold {fold}'s: {n} of them): their images would carry labelled data the "
                         "classifiers are denied, so a gain would not measure generation; give generators trained "
                         "on the kept images only, or pass --allow-generator-extra-data to measure it anyway")
    return Study(config, command, hashes, leaks, releases)


def _check_generator(config: SweepConfig, fold: int, path: Path, test: ImageSet,
                     valid: ImageSet) -> tuple[LoadedGenerator, dict]:
    """The generator (its hash, its release name) and what it saw of the test set (refused), of its fold's validation
    split and, with a real fraction below 1, of the training images that fraction drops."""
    gen = load_generator(path)
    check_fits(gen, config.data, list(test.class_names), test.pixel_scale_arcsec, name=str(path))
    train = kept = None
    if config.real_fraction < 1:
        train = load_dataset(replace(config.data, fold=fold, subset="train"))
        kept = {seed: mixing.real_fraction(train, config.real_fraction, seed) for seed in config.seeds}
    return gen, leakage.check(gen.config.data, config.data, test, valid, train, kept)


def run(study: Study, engine: Engine, device: str, progress: bool, overwrite: bool = False) -> tuple[dict, str]:
    """Run the sweep and write the report of its finished cells; the result's "errors" lists the
    cells that failed this time (the next run with the same command retries them)."""
    config = study.config
    plan.check_folder(config.out, config.plan)
    check_reuse(config, overwrite)
    plan.record(config.out, config.plan)
    write_text(config.out / "sweep.json", config_json(config))
    record_splits(config.data, config.out)
    outcome = run_sweep(config, engine, device, progress)
    cells = attach_test_labels(outcome.cells)  # cells written before they stored labels get them here
    if not any(c["arm"] == REFERENCE_ARM for c in cells):
        raise ValueError(f"no {REFERENCE_ARM} cell finished ({len(outcome.errors)} failed, listed in "
                         f"{config.out / 'errors.json'}); nothing to compare with")
    results = {
        "command": study.command,
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "generator_hashes": study.generator_hashes,
        "generator_releases": study.generator_releases,
        "leakage": study.leakage,
        "mode": config.arms[0].spec.mode,
        "reference_arm": REFERENCE_ARM,
        "plan": config.plan.describe() if config.plan else None,
        **judge(cells, config.plan.describe() if config.plan else None),
        "errors": outcome.errors,
        "compute": spent(cells),  # summed over the workers, per device kind
        "cells": [{k: c[k] for k in ("arm", "fold", "seed", "best_epoch", "valid_accuracy", "failure")}
                  | {"test_accuracy": c["test"]["accuracy"]} for c in cells],
    }
    report.write_outputs(results, config.out)
    return results, report.format_table(results["summary"], REFERENCE_ARM, results["controls"])


def judge(cells: list[dict], declared: dict | None = None) -> dict:
    """The summary (means, gains with both intervals), the arms against their controls and, under
    a plan (its `describe()`), the declared comparisons with Holm's adjustment within each family."""
    summary = analysis.summarize(cells, REFERENCE_ARM)
    out = {"summary": summary, "controls": analysis.against_controls(cells, summary)}
    if declared:
        out["declared"] = analysis.declared(cells, declared)
    return out


def rerender(folder: Path) -> dict:
    """Write a study folder's report again from its stored cells (no training): the cells its
    results.json lists, with today's statistics. Returns the new results."""
    results = json.loads((folder / "results.json").read_text())
    cells = attach_test_labels([_stored_cell(folder, c) for c in results["cells"]])
    results |= judge(cells, results.get("plan")) | {"compute": spent(cells)}
    report.write_outputs(results, folder)
    return results


def _stored_cell(folder: Path, listed: dict) -> dict:
    name = f"{listed['arm']}/fold{listed['fold']}-seed{listed['seed']}.json"
    path = cell_files(folder, listed["arm"]).get(name)  # its own file, or the one it references
    if path is None:
        raise ValueError(f"{folder / 'cells' / name}: results.json lists this cell, but its file is missing")
    cell = json.loads(path.read_text())
    if cell["test"]["accuracy"] != listed["test_accuracy"]:
        raise ValueError(f"{path}: test accuracy {cell['test']['accuracy']} differs from the "
                         f"{listed['test_accuracy']} results.json lists (a cell rerun since?)")
    return cell


def config_json(config) -> str:
    """The sweep's shared settings, for tools that read the folder (e.g. augment.corner_cases); each
    cell records its own full identity, which is what decides reuse."""
    d = asdict(config)
    for key in ("arms", "folds", "seeds", "out"):
        d.pop(key)
    return json.dumps(d, indent=2, default=str, sort_keys=True)
