"""An augmentation study from command-line options: every input checked before any training,
then the sweep, the summary and the report files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from classifier.engine import TrainSettings
from wgan.atomic import write_text
from wgan.data import CLASS_NAMES, DataConfig, ImageSet, load_dataset
from wgan.sampling import load_generator

from . import analysis, leakage, mixing, registry, report
from .sweep import SweepConfig, build_arms, check_reuse, run_sweep

REFERENCE_ARM = mixing.MixSpec().label  # "r=0": real images only, base settings


@dataclass
class Study:
    config: SweepConfig
    command: str
    generator_hashes: dict[str, str] | None  # fold -> generator content hash
    leakage: dict | None  # fold -> what that fold's generator saw of the test and validation images


def prepare(opts: dict, command: str) -> Study:
    """Validate everything (ratios, generator, data, output folder); raises ValueError/OSError."""
    specs = [mixing.MixSpec(mode=opts["mode"])] + [mixing.parse_ratio(r, opts["mode"]) for r in opts["ratios"]]
    specs = list({s.label: s for s in specs}.values())  # ratio 0 first, duplicates once
    base = TrainSettings(model=opts["model"], epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"],
                         class_weighted=opts["class_weighted"], dihedral=opts["dihedral"], tta=opts["tta"],
                         augment_generated=opts["generated_augment"] == "same-as-real")
    data = DataConfig(split="cv", crop=128, resolution=None if opts["resolution"] == 128 else opts["resolution"])
    needs_generator = any(not s.is_zero for s in specs)
    config = SweepConfig(
        generators=_generators(opts) if needs_generator else None,
        arms=build_arms(specs, base, opts["baselines"], opts["control"]), folds=opts["folds"], seeds=opts["seeds"],
        base=base, data=data, schedule=opts["schedule"], pool=opts["pool"], fidelity_filter=opts["fidelity_filter"],
        real_fraction=opts["real_fraction"], budget=opts["budget"],
        out=opts["out"] or Path("runs") / f"augment-{opts['model']}-{opts['mode']}")
    for path in set((config.generators or {}).values()):
        if not path.is_file():
            raise ValueError(f"{path}: no generator export; train one with wgan-train or pass --checkpoint")
    if not opts.get("overwrite"):
        check_reuse(config)  # read-only here; run() deletes differing cells under the folder's lock
    if not needs_generator:
        return Study(config, command, None, None)
    test = load_dataset(replace(config.data, subset="test"))
    valids = {f: load_dataset(replace(config.data, fold=f, subset="valid")) for f in config.folds}
    checks = {fold: _check_generator(config, path, test, valids[fold]) for fold, path in config.generators.items()}
    hashes = {str(fold): gen_hash for fold, (gen_hash, _) in checks.items()}
    leaks = {str(fold): leaks for fold, (_, leaks) in checks.items()}
    return Study(config, command, hashes, leaks)


def _generators(opts: dict) -> dict[int, Path]:
    """fold -> generator: --checkpoint for every fold, or else each fold's released generator."""
    if opts["checkpoint"] is not None:
        return {fold: opts["checkpoint"] for fold in opts["folds"]}
    return registry.fold_generators(opts["registry"], opts["folds"])


def _check_generator(config: SweepConfig, path: Path, test: ImageSet, valid: ImageSet) -> tuple[str, dict]:
    """The generator's hash and what it saw of the test set (refused) and of its fold's validation split."""
    gen = load_generator(path)
    gen_data = gen.config.data
    resolution = config.data.resolution or config.data.crop
    if gen.resolution != resolution:
        raise ValueError(f"{path}: the generator makes {gen.resolution} px images, the classifier data is {resolution} px "
                         f"(pass --resolution {gen.resolution})")
    if list(gen.class_names) != list(CLASS_NAMES):
        raise ValueError(f"{path}: generator classes {gen.class_names} differ from the data's {list(CLASS_NAMES)}")
    if gen_data.crop != config.data.crop or abs(gen.pixel_scale_arcsec - test.pixel_scale_arcsec) > 1e-9:
        raise ValueError(f"{path}: the generator was trained on {gen_data.crop} px crops at {gen.pixel_scale_arcsec:g} "
                         f"arcsec/px, the classifier data are {config.data.crop} px crops at "
                         f"{test.pixel_scale_arcsec:g} arcsec/px: its sources would be mixed in at another angular scale")
    return gen.file_hash, leakage.check(gen_data, config.data, test, valid)


def run(study: Study, workers: int, device: str, progress: bool, overwrite: bool = False) -> tuple[dict, str]:
    """Run the sweep and write the report of its finished cells; the result's "errors" lists the
    cells that failed this time (the next run with the same command retries them)."""
    config = study.config
    check_reuse(config, overwrite)
    write_text(config.out / "sweep.json", config_json(config))
    outcome = run_sweep(config, workers, device, progress)
    cells = outcome.cells
    if not any(c["arm"] == REFERENCE_ARM for c in cells):
        raise ValueError(f"no {REFERENCE_ARM} cell finished ({len(outcome.errors)} failed, listed in "
                         f"{config.out / 'errors.json'}); nothing to compare with")
    summary = analysis.summarize(cells, REFERENCE_ARM)
    results = {
        "command": study.command,
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "generator_hashes": study.generator_hashes,
        "leakage": study.leakage,
        "mode": config.arms[0].spec.mode,
        "reference_arm": REFERENCE_ARM,
        "summary": summary,
        "errors": outcome.errors,
        "wall_seconds": sum(c.get("seconds", 0.0) for c in cells),
        "cells": [{k: c[k] for k in ("arm", "fold", "seed", "best_epoch", "valid_accuracy", "failure")}
                  | {"test_accuracy": c["test"]["accuracy"]} for c in cells],
    }
    report.write_outputs(results, config.out)
    return results, report.format_table(summary, REFERENCE_ARM)


def config_json(config) -> str:
    """The sweep's shared settings, for tools that read the folder (e.g. augment.corner_cases); each
    cell records its own full identity, which is what decides reuse."""
    d = asdict(config)
    for key in ("arms", "folds", "seeds", "out"):
        d.pop(key)
    return json.dumps(d, indent=2, default=str, sort_keys=True)
