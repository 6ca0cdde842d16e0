"""wgan-train, wgan-sample and wgan-select: parse and check the options, call the wgan library."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wgan import released
from wgan.checkpoint import CheckpointError
from wgan.intensity import SCALES
from wgan.loss import LOSSES
from wgan.networks import UPSAMPLERS
from wgan.presets import DEFAULT_PRESET, PRESETS
from wgan.selection import SCORES as SELECTION_SCORES
from wgan.writers import FORMATS

from . import options
from .options import MAX_SEED, SEED, USER_ERRORS, FiniteFloat

if TYPE_CHECKING:  # the command module stays light to import; the config comes with its work
    from wgan.config import TrainConfig


@options.command(renamed={"--eval-extractor": "--extractor", "--eval-n": "--eval-n-per-class"})
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET,
              help="Recipe: network plus critic schedule (docs/guide/training.md).")
@click.option("--upsample", type=click.Choice(list(UPSAMPLERS)), default=None,
              help="How the generator doubles its resolution; default: the preset's.")
@click.option("--resolution", type=int, default=None, help="Image size (power of two); default: the preset's.")
@click.option("--width", type=click.FloatRange(0, min_open=True), default=1.0,
              help="Scale every layer's channel count of both networks (e.g. 0.5: half the preset's widths).")
@click.option("--intensity", type=click.Choice(list(SCALES)), default=None,
              help="Intensity scale the generator outputs and the critic compares (sqrt, asinh: more of the range "
                   "for faint emission); samples are always linear. Default: the preset's.")
@options.data_source()
@options.split_file()
@click.option("--split", type=click.Choice(["literature", "cv"]), default="cv",
              help="cv (with --fold): a generator augment-eval can use; literature: its training split holds "
                   "288 of the 400 cv test images.")
@click.option("--fold", type=click.IntRange(0), default=0, help="Cross-validation fold (with --split cv).")
@click.option("--crop", type=click.IntRange(8), default=128, help="Centre crop in source pixels.")
@click.option("--batch-size", type=click.IntRange(1), default=64)
@click.option("--kimg", type=FiniteFloat(0, min_open=True), default=None,
              help="Length in thousands of real images shown to the critic (instead of --iters).")
@click.option("--iters", type=click.IntRange(1), default=None,
              help="Length in generator iterations (overrides --kimg); default: 2500, the released generators' "
                   "length (small-asinh: 320 kimg, about 50 minutes on one CPU thread; the published 2000 kimg "
                   "is --kimg 2000, about 6x as long).")
@click.option("--n-critic", type=click.IntRange(1), default=None, help="Critic steps per generator step; default: the preset's.")
@click.option("--loss", type=click.Choice(list(LOSSES)), default="wgan-gp")
@click.option("--gp-lambda", type=click.FloatRange(0), default=10.0, help="Penalty weight (R1's gamma for logistic-r1).")
@click.option("--gp-every", type=click.IntRange(1), default=1,
              help="Lazy penalty: on every k-th critic step only, weighted by k.")
@click.option("--lr-g", type=click.FloatRange(0, min_open=True), default=None, help="Generator lr; default: the preset's.")
@click.option("--lr-d", type=click.FloatRange(0, min_open=True), default=None, help="Critic lr; default: the preset's.")
@click.option("--betas", type=(float, float), default=(0.0, 0.9), help="Adam betas.")
@click.option("--ema-kimg", type=click.FloatRange(0, min_open=True), default=10.0, help="EMA half-life in kimg.")
@click.option("--ema-rampup", type=click.FloatRange(0), default=0.05, help="Cap half-life at this x images seen (0: off).")
@click.option("--output-activation", type=click.Choice(["clamp", "tanh"]), default="clamp")
@click.option("--diffaug", default="none", help="Critic-input augmentation: none, translation, cutout or 'translation,cutout'.")
@options.dihedral()
@click.option("--rotate/--no-rotate", default=False, help="Also rotate real images by arbitrary angles.")
@click.option("--seed", type=SEED, default=0)
@options.device()
@click.option("--amp/--no-amp", default=None,
              help="bf16 autocast; default: on where bf16 is native (CUDA, CPUs with AVX-512 BF16 or AMX).")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Run directory; default: a new numbered one under --runs-root.")
@click.option("--runs-root", type=click.Path(path_type=Path), default=Path("runs"))
@click.option("--resume", default=None,
              help="'auto': continue --run-dir (or the newest run), refused when there is none; 'if-any': continue "
                   "if there is a run, else start one (for resubmitted jobs); or a checkpoint path.")
@click.option("--log-every", type=click.IntRange(1), default=50, help="Generator iterations between stats lines.")
@click.option("--sample-every", type=click.IntRange(1), default=1000)
@click.option("--checkpoint-every", type=click.IntRange(1), default=1000)
@click.option("--keep", type=click.IntRange(1), default=3, help="Training-state checkpoints to keep.")
@click.option("--eval-every", type=click.IntRange(0), default=0,
              help="Generator iterations between KID/FID per class of EMA samples (0: off); the best is exported as generator-best.pt.")
@options.extractor("--extractor", "eval_extractor", help_text="Frozen classifier whose features --eval-every scores in.")
@click.option("--eval-n-per-class", "eval_n", type=click.IntRange(2), default=200,
              help="EMA samples per class for --eval-every.")
@click.option("--eval-tstr-epochs", type=click.IntRange(0), default=0,
              help="With --eval-every: also train the baseline CNN this many epochs on the samples and log its "
                   "per-class F1 on the training images (a usefulness score wgan-select can choose on).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@options.progress()
def train_command(**opts):
    """Train a class-conditional WGAN-GP (default: the `small-asinh` preset on the FIRST cv fold 0 training split).

    \b
    Examples:
      wgan-train                                   # small-asinh preset, real FIRST cv fold 0, best device
      wgan-train --preset paper --kimg 30000       # the published architecture at 128 px
      wgan-train --resume auto --run-dir runs/00001-small-asinh-64px-first-cv0-b64-s0
      wgan-train --data my_survey/ --fold 2 --run-dir runs/gen-fold2   # your own class folder, fold 2's training images
    """
    from .wgan_train import run_training

    try:
        run_training(opts, click.get_current_context())
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None


def config_from_args(args) -> TrainConfig:
    """The config of the new run `wgan-train ARGS` would train, without training it: the command's
    own option parsing and defaults, so a benchmark or notebook comparing recipes written as
    options trains exactly what the command would."""
    from .wgan_train import config_from_options

    return config_from_options(train_command.make_context("wgan-train", [str(a) for a in args]).params)


@options.command()
@click.option("--n", "n", type=click.IntRange(1), required=True, help="Number of images in total.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Generator export or released name (first-cv0 ... first-cv4); default: the newest "
                   "runs/*/generator.pt, else first-cv0.")
@click.option("--class", "class_name", default="all",
              help="One of the generator's classes (FIRST: FRI, FRII, Compact, Bent), or all (equal numbers per class).")
@click.option("--seed", type=SEED, default=0, help="Image i gets seed SEED+i.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("samples"), help="Folder (or .npz/.h5 file).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Default: npz or h5 when --out ends in .npz, .h5 or .hdf5, else png.")
@click.option("--grid", is_flag=True, help="Also write one PNG grid per class.")
@click.option("--batch-size", type=click.IntRange(1), default=256)
@options.device()
@options.progress()
def sample_command(n, checkpoint, class_name, seed, out, fmt, grid, batch_size, device, progress):
    """Draw images from a trained generator.

    \b
    Examples:
      wgan-sample --n 100 --format fits
      wgan-sample --n 1000 --class Bent --out bent.h5 --grid
    """
    from wgan.device import select_device
    from wgan.sampling import load_generator, write_samples
    from wgan.writers import PER_IMAGE, claim_folder, output_folder, resolve_format

    try:
        fmt = resolve_format(out, fmt)
        path = released.find_generator(checkpoint) if checkpoint else _default_generator()
        gen = load_generator(path, select_device(device))
        if class_name != "all" and class_name not in gen.class_names:
            raise click.BadParameter(f"'{class_name}' is not a class of this generator ({', '.join(gen.class_names)})",
                                     param_hint="'--class'")
        classes = list(range(len(gen.class_names))) if class_name == "all" else [gen.class_names.index(class_name)]
        if seed + n - 1 > MAX_SEED:
            raise click.BadParameter(f"seeds {seed}..{seed + n - 1} pass {MAX_SEED}", param_hint="'--seed' / '--n'")
        _check_writable(output_folder(out, fmt))
        _check_space(output_folder(out, fmt), n, gen.resolution, fmt)
        if fmt in PER_IMAGE or grid:
            claim_folder(output_folder(out, fmt), gen.file_hash)
        target = write_samples(gen, n, classes, seed, out, fmt, grid, batch_size, progress)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {n} images ({fmt}) from {path} to {target}")
    if fmt in PER_IMAGE:  # a folder claimed by this generator keeps the images of earlier runs: say so
        held = sum(1 for f in target.glob(f"*.{fmt}") if not f.name.startswith("grid_"))
        if held > n:
            click.echo(f"{target} now holds {held} images of this generator ({held - n} from earlier runs into "
                       "the same folder); pass a new --out for this draw alone")


def _default_generator() -> Path:
    runs = sorted(Path("runs").glob("[0-9]*-*/generator.pt"))
    if runs:
        return runs[-1]
    if released.GENERATOR.is_file():
        return released.GENERATOR
    raise CheckpointError("no generator found: train one with wgan-train or pass --checkpoint")


def _nearest_existing(folder: Path) -> Path:
    """The folder itself or its nearest existing ancestor: checks look there and create nothing."""
    while not folder.exists():
        folder = folder.parent
    return folder


def _check_writable(folder: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise ValueError(f"{existing}: is a file, cannot write output under it")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{existing}: cannot write output ({error.strerror})") from None


# Bytes one image takes on disk at most, per format: PNG and NPZ hold about one byte a pixel
# (PNG compresses the floor well, but noise does not compress), FITS four plus its header blocks.
_BYTES_PER_PIXEL = {"png": 1.1, "npz": 1.0, "h5": 1.1, "fits": 4.0}
_BYTES_PER_IMAGE = {"png": 200, "npz": 16, "h5": 2048, "fits": 2 * 2880}


def _check_space(folder: Path, n: int, resolution: int, fmt: str) -> None:
    """Refuse before writing anything when n images cannot fit on the disk."""
    existing = _nearest_existing(folder)
    need = n * (resolution * resolution * _BYTES_PER_PIXEL[fmt] + _BYTES_PER_IMAGE[fmt])
    free = shutil.disk_usage(existing).free
    if need > free:
        raise click.BadParameter(f"{n} images of {resolution} px as {fmt} need about {need / 1e9:.3g} GB, "
                                 f"but {existing} has {free / 1e9:.3g} GB free", param_hint="'--n'")


@options.command()
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="A wgan-train run trained with --eval-every (its candidates/ and stats.jsonl).")
@click.option("--score", type=click.Choice(list(SELECTION_SCORES)), default="fid",
              help="Per-class score of the periodic evaluation (on the training split only) that picks each class's candidate.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Default <run-dir>/generator-per-class-<score>.pt.")
def select_command(run_dir, score, out):
    """Pick the best candidate generator of each class and write one composite export.

    \b
    Examples:
      wgan-select --run-dir runs/resize-cv0
      wgan-select --run-dir runs/resize-cv0 --score kid --out per-class.pt
      wgan-sample --checkpoint runs/resize-cv0/generator-per-class-fid.pt --n 64
    """
    from wgan.atomic import WriteError
    from wgan.selection import SelectionError, write_composite

    out = out or run_dir / f"generator-per-class-{score}.pt"
    try:
        chosen = write_composite(run_dir, score, out)
    except (SelectionError, CheckpointError, WriteError, OSError) as error:
        raise click.ClickException(str(error)) from None
    for name, pick in chosen.items():
        click.echo(f"{name}: iteration {pick['step']} ({score} {pick['value']:.4g})")
    click.echo(f"wrote {out}")
