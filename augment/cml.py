"""Check a new generator end to end and compare it with the registry's current best: quality per
class, augmentation gain per class, behavioural tests and corner cases, plus the figures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from classifier.engine import TrainSettings
from classifier.evaluate_generator import GeneratorEvaluation, evaluate_generator
from classifier.export import load_classifier
from classifier.quality import featurize
from wgan import registry, released
from wgan.compat import check_fits
from wgan.data import DataConfig, load_dataset, resolve_splits
from wgan.data.cache import file_digest
from wgan.device import select_device
from wgan.sampling import load_generator

from . import analysis, behaviour, corner_cases, gates, visuals
from .engine import Engine
from .labels import attach_test_labels
from .mixing import MixSpec
from .sweep import run_sweep
from .sweep_config import SweepConfig, build_arms


@dataclass
class CmlSettings:
    ratio: float = 2.0
    folds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int = 60
    n_quality: int = 400
    vit_epochs: int = 30
    survey_folder: Path | None = None
    data: str | None = None  # the labelled set the classifiers train on; None: the generator's own
    splits: str | None = None  # its split file (own data only); None: the generator's, else the default
    invariance: float = 0.7  # thresholds of the behavioural tests
    max_survey_drop: float = 0.15
    minimum_functionality: float = 0.9
    other_survey: float = 0.6


QUICK = {"folds": [0], "seeds": [0], "epochs": 10, "n_quality": 100, "vit_epochs": 2}


VIT_MODEL = "vit-conv"


def vit_recipe(epochs: int) -> dict:
    """The attention figure's ViT: the convolutional-stem ViT with the guide's from-scratch
    recipe (the patch-token ViT stays at chance at these budgets), warm-up shortened for short runs."""
    return {"lr": 5e-4, "weight_decay": 0.05, "warmup_epochs": min(5, max(1, epochs // 6))}


@dataclass
class Paths:
    checkpoint: Path
    out: Path
    registry: Path = released.REGISTRY
    extractor: Path = released.EXTRACTOR
    corner_cases: Path | None = None  # None: the released FIRST list, or beside the registry for other data


def train_cells(paths: Paths, s: CmlSettings, data: DataConfig, model: str, epochs: int, folds: list[int],
                seeds: list[int], with_baseline: bool, recipe: dict | None = None,
                progress: bool | str = True, engine: Engine | None = None) -> tuple[SweepConfig, list[dict]]:
    """Train (or reuse, the sweep resumes) the check's cells: real only when `with_baseline`, and
    `s.ratio` with the checkpoint's images; raises naming the first failed cell."""
    base = TrainSettings(model=model, epochs=epochs, dihedral=False, **(recipe or {}))
    specs = ([MixSpec(0.0)] if with_baseline else []) + [MixSpec(s.ratio)]
    config = SweepConfig(generators={f: (paths.checkpoint,) for f in folds}, arms=build_arms(specs, base, False),
                         folds=folds, seeds=seeds, base=base, data=data, out=paths.out / f"train-{model}",
                         save_models=True, pool_draws="nested")  # as the registry's gains were measured
    # the check reads the trained models back: on another machine's workers it needs a shared filesystem
    outcome = run_sweep(config, engine, progress=progress)
    if outcome.errors:
        first = outcome.errors[0]
        raise ValueError(f"{len(outcome.errors)} training cells failed (first: {first['arm']} fold {first['fold']} "
                         f"seed {first['seed']}: {first['error']}); rerun to retry them")
    return config, outcome.cells


def run(paths: Paths, s: CmlSettings, device: str = "auto", progress: bool | str = True,
        engine: Engine | None = None) -> dict:
    """Everything but the decision; returns report.json's content (figures are written to out)."""
    dev = select_device(device)
    gen = load_generator(paths.checkpoint, dev)
    best = registry.best(registry.load(paths.registry), "generator")
    gates.check_comparable(registry.gate_metrics(best), gen.class_names)  # before hours of training
    gen_config = gen.config
    extractor = load_classifier(paths.extractor, dev)
    data = classifier_data(gen, s)
    test = load_dataset(replace(data, subset="test"))
    names = test.class_names
    check_fits(gen, data, list(names), name=str(paths.checkpoint), classifier_resolution=extractor.resolution)
    if paths.corner_cases is None:
        paths = replace(paths, corner_cases=released.CORNER_CASES if data.source == "first"
                        else paths.registry.parent / "corner_cases.json")
    cases = _existing_corner_cases(paths, test)  # a list that does not fit fails here, not after the training
    quality, images = evaluate_generator(gen, extractor,
                                         GeneratorEvaluation(s.n_quality, 0, min(100, s.n_quality // 2)))
    cnn_config, cells = train_cells(paths, s, data, "cnn", s.epochs, s.folds, s.seeds, True, progress=progress,
                                    engine=engine)
    arm = f"r={s.ratio:g}"
    cells = attach_test_labels(cells)
    summary = analysis.summarize(cells, "r=0")
    new_cnn = load_classifier(cnn_config.model_path(cnn_config.arms[1], s.folds[0], s.seeds[0]), dev).model
    base_cnn = load_classifier(cnn_config.model_path(cnn_config.arms[0], s.folds[0], s.seeds[0]), dev).model
    tests = _behaviour(new_cnn, test, s, dev)
    if cases is None:
        cases = _new_corner_cases(paths, data, [c["test"]["predicted"] for c in cells if c["arm"] == "r=0"])
    new_cell = next(c for c in cells if c["arm"] == arm and c["fold"] == s.folds[0] and c["seed"] == s.seeds[0])
    vit_config, vit_cells = train_cells(paths, s, data, VIT_MODEL, s.vit_epochs, s.folds[:1], s.seeds[:1], False,
                                        vit_recipe(s.vit_epochs), progress=progress, engine=engine)
    vit = load_classifier(vit_config.model_path(vit_config.arms[0], s.folds[0], s.seeds[0]), dev).model
    _figures(paths.out, images, test, base_cnn, new_cnn, vit, extractor)
    core = {
        "quality": {c: {k: quality["scores"][c][k] for k in ("kid", "kid_std", "fid", "precision", "recall")}
                    for c in names},
        "floor": {c: {k: quality["floor"][c][k] for k in ("kid", "fid")} for c in names},
        "gain": {**{c: analysis.reported_gain(summary[arm], f"{c}/f1") for c in names},
                 "accuracy": analysis.reported_gain(summary[arm], "accuracy")},
        "scores": {a: {k: v["mean"] for k, v in summary[a]["scores"].items()} for a in ("r=0", arm)},
        "corners": corner_cases.outcomes(cases, new_cell["test"]["predicted"]),
        "behaviour": [t.to_dict() for t in tests],
    }
    return {"generator": {"file": str(paths.checkpoint), "sha256": file_digest(paths.checkpoint), "kimg": gen.kimg,
                          "data": gen_config.data.__dict__},
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in s.__dict__.items()},
            "extractor": quality["extractor"], "failures": sum(len(v["failures"]) for v in summary.values()),
            "corner_case_list": {"file": str(paths.corner_cases), "version": cases["version"], "n": len(cases["cases"])},
            "vit": {"model": VIT_MODEL, "epochs": s.vit_epochs, "test_accuracy": vit_cells[0]["test"]["accuracy"]},
            "core": core}


def classifier_data(gen, s: CmlSettings) -> DataConfig:
    """The classifiers' data: the cv folds of the generator's own labelled set (or `s.data`) at the
    generator's crop and resolution."""
    own = gen.config.data
    resolution = None if gen.resolution == own.crop else gen.resolution
    source = own.source if s.data is None else s.data
    same = source == own.source or (source != "first" and Path(source).resolve() == Path(own.source).resolve())
    return resolve_splits(DataConfig(source=source, split="cv", crop=own.crop, resolution=resolution,
                                     pixel_scale_arcsec=own.pixel_scale_arcsec,
                                     splits=s.splits or (own.splits if same else None)))


def _behaviour(model, test, s: CmlSettings, dev) -> list[behaviour.BehaviourResult]:
    tests = [
        behaviour.invariance(model, test, dev, s.invariance),
        behaviour.survey_shift(model, test, dev, 6.0, 20.0, s.max_survey_drop),  # LoTSS-like beam
        behaviour.survey_shift(model, test, dev, 45.0, 10.0, s.max_survey_drop),  # NVSS-like beam
    ]
    if set(behaviour.SYNTHETIC_CLASSES) <= set(test.class_names):  # drawn sources of FIRST's classes
        tests.append(behaviour.minimum_functionality(model, test.resolution, test.pixel_scale_arcsec, test.class_names,
                                                     dev, s.minimum_functionality))
    if s.survey_folder:
        other = load_dataset(DataConfig(source=str(s.survey_folder), subset="all", resolution=test.resolution))
        tests.append(behaviour.other_survey(model, other, test.class_names, dev, s.other_survey))
    return tests


def _existing_corner_cases(paths: Paths, test) -> dict | None:
    """The versioned list in checkpoints/ (the released one comes from a full augment-eval sweep:
    `augment-tools corner-cases`), checked against the test set before any training; None
    when it does not exist yet."""
    if not paths.corner_cases.exists():
        return None
    cases = json.loads(paths.corner_cases.read_text())
    corner_cases.check_matches(cases, test, str(paths.corner_cases))
    return cases


def _new_corner_cases(paths: Paths, data: DataConfig, baseline_predicted: list[list[int]]) -> dict:
    """A first list, built from this run's real-only baselines and written beside the registry."""
    from wgan.atomic import write_text

    cases = corner_cases.build_for(data, baseline_predicted)
    write_text(paths.corner_cases, json.dumps(cases, indent=2))
    return cases


def _figures(out: Path, images: dict, test, base_cnn, new_cnn, vit, extractor) -> None:
    from torchvision.utils import make_grid

    from wgan.data import to_uint8, to_unit_range
    from wgan.grids import save_png

    gen_images, gen_labels = images["generated"]
    gen_images, gen_labels = torch.as_tensor(gen_images), torch.as_tensor(gen_labels)
    for c, name in enumerate(test.class_names):
        chosen = to_unit_range(gen_images[gen_labels == c][:64])
        save_png(to_uint8(make_grid(chosen[:, None], nrow=8, padding=2, pad_value=1.0)[0]).numpy(), out / f"samples_{name}.png")
    index = visuals.fixed_images(test)
    shown, labels = test.images[index], test.labels[index]
    visuals.plot_maps(shown, labels, test.class_names, {"Grad-CAM real-only": visuals.grad_cam(base_cnn, shown),
                                      "Grad-CAM with generator": visuals.grad_cam(new_cnn, shown)}, out / "gradcam.png")
    visuals.plot_maps(shown, labels, test.class_names, {"ViT attention": visuals.attention_rollout(vit, shown)}, out / "attention.png")
    real_images, real_labels = images["real"]
    real = featurize(extractor, torch.as_tensor(real_images), torch.as_tensor(real_labels))
    fake = featurize(extractor, gen_images, gen_labels)
    visuals.embeddings(real.features, real.labels, fake.features, fake.labels, test.class_names,
                       out / "embedding.png")


def decide(report: dict, registry_path: Path) -> dict:
    """Add the gates against the current best generator to the report, and the release of the
    generator's own cv fold when that is not the bar (it has no augment-cml metrics to compare with)."""
    loaded = registry.load(registry_path)
    best = registry.best(loaded, "generator")
    checks = gates.evaluate(report["core"], registry.gate_metrics(best))
    best_id = best["id"] if best else None
    release = registry.fold_release(loaded, report["generator"]["data"])
    return {**report, "best": best_id, "fold_release": release if release != best_id else None,
            "gates": checks, "passed": gates.passed(checks)}
