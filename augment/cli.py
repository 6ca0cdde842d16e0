"""augment-eval: train classifiers with generated images mixed in at several ratios, against
cheap baselines, on every fold and seed, and report the per-class gain with paired intervals."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from classifier.models import MODELS

DEFAULT_GENERATOR = Path("checkpoints/generator.pt")


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        items = sorted({int(v) for v in value.split(",")})
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers") from None
    if param.name == "folds" and not all(0 <= f <= 4 for f in items):
        raise click.BadParameter("folds are 0..4")
    return items


@click.command(context_settings={"show_default": True})
@click.option("--ratio", "ratios", multiple=True, default=["0", "1", "2", "3"],
              help="Generated/real ratio (any number >= 0) or per-class ratios 'FRI=2,Bent=3'; repeatable. "
                   "Ratio 0 (real only) is always run as the reference.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=DEFAULT_GENERATOR, help="Generator export.")
@click.option("--model", type=click.Choice(sorted(MODELS)), default="cnn")
@click.option("--folds", default="0,1,2,3,4", callback=_int_list, help="Cross-validation folds.")
@click.option("--seeds", default="0", callback=_int_list, help="Training seeds, e.g. 0,1,2.")
@click.option("--mode", type=click.Choice(["balanced", "realistic"]), default="balanced",
              help="balanced: generated images even out the classes; realistic: they copy the real class mix.")
@click.option("--schedule", type=click.Choice(["mixed", "pretrain-finetune"]), default="mixed")
@click.option("--fresh", is_flag=True, help="New generated images every epoch instead of one fixed pool.")
@click.option("--real-fraction", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              help="Keep this fraction of the real training images (stratified).")
@click.option("--baselines/--no-baselines", default=True,
              help="Also run real-only with class weights, with oversampling and with rotations/flips.")
@click.option("--epochs", type=click.IntRange(1), default=60, help="Budget: passes over the real training split (same for every arm).")
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3)
@click.option("--class-weighted", is_flag=True, help="Base setting for every arm: loss weighted by inverse class frequency.")
@click.option("--dihedral", is_flag=True, help="Base setting for every arm: random rotations/flips.")
@click.option("--tta", is_flag=True, help="Base setting for every arm: predict with the mean over the 8 rotations/flips.")
@click.option("--resolution", type=click.IntRange(8), default=64)
@click.option("--workers", type=click.IntRange(1), default=None, help="Cells run at once; default: CPU cores (or GPUs).")
@click.option("--device", default="auto")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default runs/augment-<model>-<mode>.")
@click.option("--progress/--no-progress", default=True)
def augment_eval_command(**opts):
    """Measure what generated images do to a classifier, per class.

    \b
    Examples:
      augment-eval --ratio 0 --ratio 1 --ratio 2 --ratio 3
      augment-eval --ratio 2 --model vit --seeds 0,1,2 --mode realistic
      augment-eval --ratio FRI=2,Bent=3 --folds 0 --epochs 20
    """
    from .study import prepare, run

    try:
        study = prepare(opts, command=shlex.join(["augment-eval", *sys.argv[1:]]))
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    workers = opts["workers"] or _default_workers(opts["device"])
    results, table = run(study, workers, opts["device"], opts["progress"])
    click.echo(table)
    click.echo(f"wrote {study.config.out / 'results.json'}, report.md and gain.png")


def _default_workers(device: str) -> int:
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.cuda.device_count()
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
