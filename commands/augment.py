"""augment-eval: train classifiers with generated images mixed in at several ratios, against
cheap baselines, on every fold and seed, and report the per-class gain with paired intervals."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from augment.sweep_config import BUDGETS, CONTROLS, GENERATED_LABELS, POOL_DRAWS, POOLS, SCHEDULES
from classifier.models import MODELS
from wgan import released
from wgan.workdir import DirectoryBusy, exclusive

from . import options
from .plan_option import apply_plan, refuse_overrides


@options.command()
@click.option("--ratio", "ratios", multiple=True, default=["0", "1", "2", "3"],
              help="Generated/real ratio (any number >= 0) or per-class ratios 'FRI=2,Bent=3'; repeatable. "
                   "Ratio 0 (real only) is always run as the reference.")
@click.option("--checkpoint", default=None,
              help="Generator export or released name for every fold, or a pattern with {fold} naming each fold's "
                   "own (runs/gen-fold{fold}/generator.pt), and with {seed} naming replicas trained with other seeds "
                   "(runs/gen-fold{fold}-s{seed}/generator.pt: a cell of classifier seed s uses replica s mod "
                   "--generator-seeds); default for FIRST: each fold's released generator first-cv<k> (--registry), "
                   "trained on that fold's training split only.")
@click.option("--generator-seeds", type=click.IntRange(1), default=3,
              help="With {seed} in --checkpoint: the generator replicas per fold, seeds 0..N-1.")
@options.registry()
@options.data_source()
@options.split_file()
@click.option("--model", type=click.Choice(sorted(MODELS)), default="cnn")
@options.folds()
@options.seeds()
@click.option("--mode", type=click.Choice(["balanced", "realistic"]), default="balanced",
              help="balanced: generated images even out the classes; realistic: they copy the real class mix.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="mixed",
              help="mixed: generated and real images in the same batches; pretrain-finetune: train on the "
                   "generated images alone, then on the real split alone (--epochs).")
@click.option("--pretrain-epochs", type=click.IntRange(1), default=None,
              help="pretrain-finetune: epochs on the generated images (steps of a pass over the real split); "
                   "default: --epochs.")
@click.option("--pool", type=click.Choice(POOLS), default="fixed",
              help="Generated images: one fixed pool, a new pool every epoch, or new images in every batch (as published).")
@click.option("--pool-draws", type=click.Choice(POOL_DRAWS), default="per-arm",
              help="per-arm: each arm draws its own generated images (independent replications); nested: every arm of "
                   "a fold and seed draws from the same seeds, a larger pool extending a smaller one (dose-response "
                   "designs; the studies committed before per-arm draws).")
@click.option("--inner-split", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="Cross-validated scoring: hold out this stratified share of each fold's training images to pick "
                   "the epoch, and score the fold's validation images (which then choose nothing) beside the test "
                   "set; 0: the validation split picks the epoch, as before.")
@click.option("--fidelity-filter", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="Drop generated images that the fold's real-only classifier puts in another class with a "
                   "probability above this (0: off).")
@click.option("--generated-labels", type=click.Choice(GENERATED_LABELS), default="conditioning",
              help="conditioning: each generated image is labelled with the class it was drawn for; teacher: "
                   "with the class probabilities the fold's real-only classifier gives it (soft labels).")
@click.option("--reference-epochs", type=click.IntRange(1), default=None,
              help="With --fidelity-filter or teacher labels: epochs of the fold's real-only classifier that "
                   "judges the generated images; default: --epochs.")
@click.option("--control", "controls", type=click.Choice(CONTROLS), multiple=True,
              help="Add a control arm beside every ratio (repeatable): shuffled-labels, the same generated images with "
                   "their labels shuffled (a gain it also shows is regularisation, not realism); augmented-real, "
                   "classically augmented real images (rotation, shift, flux scaling, noise) in place of the "
                   "generated ones, through the same fidelity filter (what does the generator add?).")
@click.option("--budget", type=click.Choice(BUDGETS), default="equal-steps",
              help="equal-steps: every arm gets the batches of --epochs passes over the real split; "
                   "equal-real-passes: real images seen as often as in the real-only arm (steps grow with the ratio).")
@click.option("--real-fraction", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              help="Keep this fraction of the real training images (stratified); the generators must not have "
                   "learned from the dropped ones.")
@click.option("--allow-generator-extra-data/--no-allow-generator-extra-data", default=False,
              help="With --real-fraction below 1: accept generators trained on images it drops (their samples then "
                   "carry labelled data the classifiers are denied; the report says how many).")
@click.option("--compute-matched/--no-compute-matched", default=False,
              help="Add a real-only arm trained for as many epochs as an adding arm's classifiers in all (its own plus "
                   "its reference classifier's or pre-training's): does the arm beat the same compute spent on real "
                   "images?")
@click.option("--baselines/--no-baselines", default=True,
              help="Also run real-only with class weights, with oversampling and with rotations/flips.")
@click.option("--epochs", type=click.IntRange(1), default=60, help="Budget: passes over the real training split (same for every arm).")
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3)
@options.weight_decay()
@options.warmup_epochs()
@click.option("--generated-augment", type=click.Choice(["same-as-real", "none"]), default="same-as-real",
              help="Rotations/flips of the base settings for generated images too, or none (as published).")
@click.option("--class-weighted/--no-class-weighted", default=False, help="Base setting for every arm: loss weighted by inverse class frequency.")
@options.dihedral("Base setting for every arm: random rotations/flips of the real images.")
@click.option("--rotate/--no-rotate", default=False, help="Base setting for every arm: also rotate by arbitrary angles (the tuned baseline).")
@click.option("--tta/--no-tta", default=False, help="Base setting for every arm: predict with the mean over the 8 rotations/flips.")
@options.batchnorm_stats()
@click.option("--crop", type=click.IntRange(8), default=128, help="Centre crop in source pixels (the generators' crop).")
@click.option("--resolution", type=click.IntRange(8), default=64)
@options.engine()
@options.device()
@options.classifier_amp()
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default runs/augment-<model>-<mode>.")
@click.option("--overwrite", is_flag=True,
              help="Recompute finished cells in --out that were computed under other settings (default: refuse).")
@click.option("--reuse-from", multiple=True, type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Another study folder: its cells computed under the same identity (same arm, fold, seed and "
                   "every setting) are copied in, not recomputed, and so are its reference classifiers (filters/). "
                   "Repeatable.")
@click.option("--dry-run", is_flag=True, help="List the cells and their estimated cost, then stop.")
@options.progress()
@click.option("--plan", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None, is_eager=True,
              callback=lambda ctx, param, value: apply_plan(ctx, value),
              help="A study plan (TOML) declaring the question, the comparisons and their family, and the study's "
                   "options (its [options] table; the command line may not contradict them); its hash enters every "
                   "cell and the report. See augment.plan.")
def augment_eval_command(**opts):
    """Measure what generated images do to a classifier, per class.

    \b
    Examples:
      augment-eval --ratio 0 --ratio 1 --ratio 2 --ratio 3
      augment-eval --ratio 2 --model vit --seeds 0,1,2 --mode realistic
      augment-eval --ratio FRI=2,Bent=3 --folds 0 --epochs 20
      augment-eval --data my_survey/ --checkpoint 'runs/gen-fold{fold}/generator.pt' --ratio 1
    """
    from augment.cost import estimate
    from augment.reuse import cells, reusable
    from augment.study import prepare, run

    try:
        refuse_overrides(click.get_current_context(), opts["plan"])
        study = prepare(_sweep_config(opts), shlex.join(["augment-eval", *sys.argv[1:]]), opts["overwrite"])
        engine = options.engine_from(opts, _default_workers(opts["device"]))
        workers = None if engine.scheduler else engine.workers  # an existing cluster: its size is its own
        cost = estimate(study.config)
        if opts["dry_run"]:
            adopted = reusable(study.config)
            for arm, fold, seed in cells(study.config):
                done = ("done" if study.config.cell_path(arm, fold, seed).exists() else
                        f"reused from {adopted[arm.name, fold, seed].parents[2]}" if (arm.name, fold, seed) in adopted
                        else "to run")
                click.echo(f"{arm.name}  fold {fold}  seed {seed}  {done}")
            click.echo(cost.describe(workers))
            click.echo(f"cells would run on {engine.describe()}")
            return
        click.echo(cost.describe(workers), err=True)
        with exclusive(study.config.out, "augment-eval"):
            results, table = run(study, engine, opts["device"], opts["progress"], overwrite=opts["overwrite"])
    except (ValueError, OSError, DirectoryBusy) as error:
        raise click.ClickException(str(error)) from None
    click.echo(table)
    click.echo(f"wrote {study.config.out / 'results.json'}, report.md and gain.png")
    if results["errors"]:
        raise click.ClickException(f"{len(results['errors'])} cells failed (listed in "
                                   f"{study.config.out / 'errors.json'}); the report holds the finished cells; "
                                   "run the same command again to retry them")


@options.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
def report_command(folders):
    """Write the report of augment-eval study folders again from their stored cells, with
    today's statistics (intervals over runs and test images, Holm p); nothing is retrained.

    \b
    Examples:
      augment-report runs/augment-cnn-balanced
      augment-report docs/augment/tuned/*/
    """
    from augment.study import rerender

    for folder in folders:
        if not (folder / "results.json").is_file():
            raise click.ClickException(f"{folder}: no results.json (not an augment-eval --out folder)")
        try:
            with exclusive(folder, "augment-report"):
                rerender(folder)
        except (ValueError, OSError, DirectoryBusy) as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"wrote {folder / 'report.md'}, results.json and gain.png")


def _sweep_config(opts: dict):
    """The library's sweep config from augment-eval's options."""
    from augment import mixing
    from augment.sweep_config import SweepConfig, build_arms, compute_matched_arm
    from classifier.engine import TrainSettings
    from wgan.data import DataConfig, resolve_splits

    specs = [mixing.MixSpec(mode=opts["mode"])] + [mixing.parse_ratio(r, opts["mode"]) for r in opts["ratios"]]
    specs = list({s.label: s for s in specs}.values())  # ratio 0 first, duplicates once
    base = TrainSettings(model=opts["model"], epochs=opts["epochs"], batch_size=opts["batch_size"], lr=opts["lr"],
                         weight_decay=opts["weight_decay"], warmup_epochs=opts["warmup_epochs"],
                         class_weighted=opts["class_weighted"], dihedral=opts["dihedral"], rotate=opts["rotate"], tta=opts["tta"],
                         augment_generated=opts["generated_augment"] == "same-as-real",
                         batchnorm_stats=opts["batchnorm_stats"],
                         amp=options.resolve_classifier_amp(opts["amp"], opts["device"]))
    data = resolve_splits(DataConfig(source=opts["source"], split="cv", crop=opts["crop"], splits=opts["splits"],
                                     resolution=None if opts["resolution"] == opts["crop"] else opts["resolution"]))
    generators = None
    if any(not s.is_zero for s in specs):  # fold -> export: --checkpoint (per fold with {fold}), else each fold's release
        if opts["checkpoint"] is not None:
            pattern = opts["checkpoint"]
            replicas = range(opts["generator_seeds"]) if "{seed}" in pattern else [None]
            generators = {fold: tuple(released.find_generator(pattern.replace("{fold}", str(fold)).replace(
                "{seed}", str(replica))) for replica in replicas) for fold in opts["folds"]}
        elif data.source == "first":
            generators = released.fold_generators(opts["folds"], opts["registry_path"])
        else:
            raise ValueError("your own --data needs generators trained on it: pass --checkpoint with {fold} in the "
                             "path, one per fold (wgan-train --data ... --fold k)")
    config = SweepConfig(
        generators=generators, arms=build_arms(specs, base, opts["baselines"], opts["controls"]), folds=opts["folds"],
        seeds=opts["seeds"], base=base, data=data, schedule=opts["schedule"], pretrain_epochs=opts["pretrain_epochs"], pool=opts["pool"],
        pool_draws=opts["pool_draws"], plan=opts["plan"], inner_split=opts["inner_split"],
        fidelity_filter=opts["fidelity_filter"], generated_labels=opts["generated_labels"], real_fraction=opts["real_fraction"],
        reference_epochs=opts["reference_epochs"], allow_generator_extra_data=opts["allow_generator_extra_data"], budget=opts["budget"],
        out=opts["out"] or Path("runs") / f"augment-{opts['model']}-{opts['mode']}", reuse_from=tuple(opts["reuse_from"]))
    if opts["compute_matched"]:
        config.arms.append(compute_matched_arm(config))
    return config


def _default_workers(device: str) -> int:
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.cuda.device_count()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@options.command()
@click.option("--checkpoint", required=True, help="The new generator export (or a released name).")
@click.option("--quick", is_flag=True, help="Fold 0, one seed, 10 epochs, 100 samples per class (a few minutes on 2 cores).")
@click.option("--ratio", type=click.FloatRange(0, min_open=True), default=2.0, help="Generated/real ratio (balanced).")
@options.folds()
@options.seeds()
@click.option("--epochs", type=click.IntRange(1), default=60)
@click.option("--survey-folder", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Real cutouts from another survey, one subfolder per class, for the survey-shift test.")
@click.option("--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The registry whose best generator is the bar, and where --promote records a passing one; "
                   "default: the bar from your user registry once it holds a promoted generator, else the "
                   "packaged one, and promotions into your user registry.")
@options.extractor()
@click.option("--corner-cases", type=click.Path(path_type=Path), default=None,
              help="Corner-case list; default: the released one for FIRST, else corner_cases.json beside --registry "
                   "(built from this run's real-only classifiers when it does not exist).")
@click.option("--data", "source", default=None,
              help="The labelled set the classifiers train and test on; default: the generator's own training data.")
@options.split_file()
@click.option("--promote", is_flag=True, help="Record a passing generator in the registry as the new best.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default runs/cml-<hash>.")
@options.engine(workers_default="1, in this process (the check reads its trained models back: on other machines' "
                                "workers it needs a shared filesystem)")
@options.device()
@options.progress()
def cml_command(checkpoint, quick, ratio, folds, seeds, epochs, survey_folder, registry_path, extractor,
                corner_cases, source, splits, promote, out, device, progress, **where):
    """Check a new generator against the current best: per-class quality and augmentation gain,
    behavioural tests, corner cases; writes report.md/report.json and exits 1 when a gate fails.

    \b
    Examples:
      augment-cml --checkpoint runs/00002-small-64px-first-cv0-b64-s0/generator-best.pt --quick
      augment-cml --checkpoint new.pt --promote
      augment-cml --checkpoint runs/mine/generator.pt --extractor runs/my-cnn/model.pt --registry my/registry.json
    """
    from augment import cml, cml_report
    from wgan import registry
    from wgan.atomic import write_text
    from wgan.data.cache import file_digest

    checkpoint = released.find_generator(checkpoint)
    if not checkpoint.is_file():
        raise click.ClickException(f"{checkpoint}: no generator export")
    settings = cml.CmlSettings(ratio=ratio, folds=folds, seeds=seeds, epochs=epochs, survey_folder=survey_folder,
                               data=source, splits=splits)
    if quick:
        settings = cml.CmlSettings(**{**settings.__dict__, **cml.QUICK})
    out = out or Path("runs") / f"cml-{file_digest(checkpoint)[:12]}"
    bar = released.bar_registry(registry_path)
    paths = cml.Paths(checkpoint, out, bar, extractor, corner_cases)
    try:
        target = released.writable(registry_path or released.user_registry()) if promote else None  # refused first
        engine = options.engine_from(where, default_workers=1)  # the check's few cells: in this process
        best = registry.best(registry.load(bar), "generator")
        with exclusive(out, "augment-cml"):
            report = cml.decide(cml.run(paths, settings, device, progress, engine), bar)
            write_text(out / "report.json", json.dumps(report, indent=2))
            write_text(out / "report.md", cml_report.markdown(report, registry.gate_metrics(best)))
    except (ValueError, OSError, DirectoryBusy) as error:
        raise click.ClickException(str(error)) from None
    for gate in report["gates"]:
        click.echo(f"{'pass' if gate['passed'] else 'FAIL'}  {gate['name']}: {gate['detail']}")
    if report["fold_release"]:  # the bar is the overall best, not this fold's release: say so
        click.echo(f"note: gated against the registry's best ({report['best']}); this fold's release "
                   f"{report['fold_release']} has no augment-cml metrics to compare with (run augment-cml on it "
                   "to make it the bar)")
    click.echo(f"{'PASSED' if report['passed'] else 'FAILED'}; wrote {out / 'report.md'}")
    if promote and report["passed"]:
        card = checkpoint.with_suffix(".json")
        command = json.loads(card.read_text()).get("command", "") if card.exists() else ""
        entry = registry.promote_generator(target, str(checkpoint), report["generator"]["sha256"], command,
                                           report["generator"]["data"], report["core"], over=report["best"])
        click.echo(f"promoted {entry['id']} in {target}")
    if not report["passed"]:
        raise SystemExit(1)
