"""classifier-train (train on real data, pick the epoch on valid, report on test) and wgan-eval
(score a generator per class): parse and check the options, call the classifier library."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from classifier.models import MODELS
from wgan import released
from wgan.distributed import is_main_process
from wgan.workdir import exclusive

from . import options
from .options import SEED, USER_ERRORS


@options.command()
@options.data_source()
@options.split_file()
@click.option("--split", type=click.Choice(["literature", "cv"]), default="cv")
@options.folds(default="0")
@click.option("--crop", type=click.IntRange(8), default=128)
@click.option("--resolution", type=click.IntRange(8), default=64)
@click.option("--model", type=click.Choice(sorted(MODELS)), default="cnn")
@click.option("--epochs", type=click.IntRange(1), default=30)
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3)
@options.weight_decay()
@options.warmup_epochs()
@click.option("--class-weighted/--no-class-weighted", default=False, help="Weight the loss by inverse class frequency.")
@click.option("--oversample/--no-oversample", default=False, help="Class-balanced sampling of training images.")
@options.dihedral()
@click.option("--rotate/--no-rotate", default=False, help="Also rotate by arbitrary angles.")
@click.option("--tta/--no-tta", default=False, help="Predict with the mean over the 8 rotations/flips.")
@options.batchnorm_stats()
@click.option("--select-on", type=click.Choice(["accuracy", "macro_f1", "loss"]), default="accuracy",
              help="Validation metric that picks the epoch.")
@click.option("--patience", type=click.IntRange(1), default=None, help="Early stopping after N epochs without gain.")
@click.option("--seed", type=SEED, default=0)
@options.device()
@options.classifier_amp()
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder; default runs/classifier-<model>-<split>-s<seed>. The cv split writes "
                   "fold<k>/ per fold (however many) and summary.json; the literature split writes its one "
                   "partition into the folder itself.")
@click.option("--overwrite", is_flag=True,
              help="Retrain finished runs in --out that were trained under other settings (default: refuse).")
@options.progress()
def classifier_train_command(**opts):
    """Train a classifier on real images and report per-class test metrics.

    \b
    Examples:
      classifier-train --model cnn --split cv --folds 0
      classifier-train --folds 0,1,2,3,4 --epochs 300 --class-weighted --rotate --tta   # the tuned baseline
      classifier-train --data my_survey/ --folds 0,1,2,3,4   # your own class folder and its split file
      classifier-train --model vit --epochs 100 --out runs/vit   # writes runs/vit/fold0/model.pt
    """
    from classifier.crossval import learned, run_folds
    from classifier.training import finished_metrics, run_classifier

    folds = opts["folds"]
    try:
        run = _classifier_run(opts, folds[0])
        # One writer per output folder; under torchrun only the main process writes.
        with exclusive(run.out, "classifier-train") if is_main_process() else contextlib.nullcontext():
            if opts["split"] == "cv":  # out/fold<k>/ for every fold, however many
                done = run_folds(run, folds, progress=opts["progress"], overwrite=opts["overwrite"])
                results = done.metrics
                for fold in done.reused:
                    click.echo(f"{run.out / f'fold{fold}'} holds this run already (same settings and data): "
                               "reporting it", err=True)
            else:  # the literature split has one partition, no folds: out/
                result = finished_metrics(run, opts["overwrite"])
                if result is not None:
                    click.echo(f"{run.out} holds this run already (same settings and data): reporting it", err=True)
                else:
                    result = run_classifier(run, progress=opts["progress"])
                results = {None: result}
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    if not is_main_process():
        return
    if len(results) > 1:
        summary = done.summary
        click.echo(f"{len(folds)} folds: test accuracy {summary['accuracy']['mean']:.4f} +- {summary['accuracy']['std']:.4f}, "
                   f"macro F1 {summary['macro_f1']['mean']:.4f} +- {summary['macro_f1']['std']:.4f}")
        for name, m in summary["per_class"].items():
            click.echo(f"  {name:8s} F1 {m['f1']['mean']:.3f} +- {m['f1']['std']:.3f}")
        for fold, reason in summary["collapsed"].items():
            click.echo(f"COLLAPSED: fold {fold} did not learn ({reason}); do not use it as an extractor or reference")
        click.echo(f"wrote {run.out / 'summary.json'} and fold{{{','.join(map(str, folds))}}}/")
        return
    ((fold, result),) = results.items()
    test = result["test"]
    click.echo(f"best epoch {result['best_epoch']}: test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}, "
               f"Brier {test['brier']:.4f}")
    for name, m in test["per_class"].items():
        click.echo(f"  {name:8s} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  AUC {m['roc_auc']:.3f}  n {m['support']}")
    reason = learned(result)
    if reason:
        click.echo(f"COLLAPSED: this classifier did not learn ({reason}); do not use it as an extractor or reference")
    click.echo(f"wrote {run.out if fold is None else run.out / f'fold{fold}'}")


@options.command(renamed={"--n": "--n-per-class"})
@click.option("--checkpoint", default="first-cv0", help="Generator export, or a released name (first-cv0 ... first-cv4).")
@options.extractor()
@click.option("--n-per-class", "n_per_class", type=click.IntRange(2), default=400, help="Generated images per class.")
@click.option("--seed", type=SEED, default=0)
@click.option("--kid-subset", type=click.IntRange(2), default=100, help="Subset size of the KID estimate.")
@click.option("--tstr-epochs", type=click.IntRange(0), default=0,
              help="Also train the baseline CNN on generated images only (this many epochs) and test on real.")
@click.option("--floor-size", type=click.IntRange(2), default=100,
              help="Matched scores: images per class in each compared set (generated, and unseen real: the fold's "
                   "validation and test images), capped at the unseen images of the class.")
@click.option("--floor-draws", type=click.IntRange(2), default=10,
              help="Matched scores: draws of each set; the floor is their mean and spread.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder; default: runs/eval-<generator hash>.")
@options.device()
@options.progress()
def eval_command(checkpoint, extractor, n_per_class, seed, kid_subset, tstr_epochs, floor_size, floor_draws, out,
                 device, progress):
    """Score a generator per class beside the real-vs-real floor: KID, FID and precision/recall at
    matched size (the floor: unseen real images of the same number, over several draws), the
    copying test (are generated images closer to their training images than unseen real ones
    are?), and the astrophysical statistics.

    \b
    Example:
      wgan-eval --checkpoint runs/00001-small-asinh-64px-first-cv0-b64-s0/generator.pt --n-per-class 400
    """
    from classifier.evaluate_generator import (
        GeneratorEvaluation,
        evaluate_generator,
        format_table,
        write_outputs,
    )
    from classifier.export import load_classifier
    from wgan.device import select_device
    from wgan.sampling import load_generator

    try:
        dev = select_device(device)
        gen = load_generator(released.find_generator(checkpoint), dev)
        feats = load_classifier(extractor, dev)
        result, images = evaluate_generator(gen, feats, GeneratorEvaluation(
            n_per_class, seed, kid_subset, tstr_epochs, floor_size, floor_draws), progress)
        out = out or Path("runs") / f"eval-{gen.file_hash[:12]}"
        write_outputs(result, images, out)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"extractor {feats.name} ({feats.file_hash}), generator {gen.file_hash} at {gen.kimg:.0f} kimg")
    click.echo(format_table(result))
    click.echo(f"wrote {out / 'scores.json'}, {out / 'quality.png'} and {out / 'copying.png'}")


def _classifier_run(opts: dict, fold: int):
    """The library's run config from classifier-train's options."""
    from classifier.engine import TrainSettings
    from classifier.training import ClassifierRun
    from wgan.data import DataConfig, resolve_splits

    settings = TrainSettings(
        model=opts["model"], epochs=opts["epochs"], batch_size=opts["batch_size"], optimizer=opts["optimizer"],
        lr=opts["lr"], weight_decay=opts["weight_decay"], warmup_epochs=opts["warmup_epochs"],
        class_weighted=opts["class_weighted"],
        oversample=opts["oversample"], dihedral=opts["dihedral"], rotate=opts["rotate"], select_on=opts["select_on"],
        patience=opts["patience"], seed=opts["seed"], tta=opts["tta"],
        batchnorm_stats=opts["batchnorm_stats"],
        amp=options.resolve_classifier_amp(opts["amp"], opts["device"]))
    resolution = None if opts["resolution"] == opts["crop"] else opts["resolution"]
    data = resolve_splits(DataConfig(source=opts["source"], split=opts["split"], fold=fold, crop=opts["crop"],
                                     resolution=resolution, splits=opts["splits"]))
    out = opts["out"] or Path("runs") / f"classifier-{opts['model']}-{opts['split']}-s{opts['seed']}"
    return ClassifierRun(settings=settings, data=data, out=out, device=opts["device"])
