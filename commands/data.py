"""wgan-data: split files for your own labelled set, and FIRST images as a folder of FITS files."""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from .options import USER_ERRORS


@options.group()
def data_group():
    """Data sets: draw a split file for your own survey, or write FIRST images as FITS files.

    \b
    Examples:
      wgan-data splits my_survey/ my_survey.splits.json --folds 10 --test-fraction 0.1 --seed 1
      wgan-data export-first runs/first-fr-fits --classes FRI,FRII
    """


@data_group.command("splits")
@click.argument("data")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--folds", type=click.IntRange(2), default=5, help="Cross-validation folds of the non-test images.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              help="Share of each class held out as the test split.")
@click.option("--seed", type=options.SEED, default=0)
def splits_command(data, out, folds, test_fraction, seed):
    """Draw a split file for your own labelled set DATA (class folder or .h5 file) into the new file
    OUT, with another plan than the default one; pass it to every command with --splits. It maps
    each image's content hash to "test" or its fold, and can be edited by hand (e.g. to keep the
    sources of one sky region together)."""
    from wgan.data import DataConfig, write_splits
    from wgan.data.splits import SplitPlan

    try:
        split = write_splits(DataConfig(source=data, split="cv", crop=None), SplitPlan(folds, test_fraction, seed), out)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    places = list(split["images"].values())
    click.echo(f"wrote {out}: {places.count('test')} test images, {folds} folds of the other "
               f"{len(places) - places.count('test')}")


@data_group.command("export-first")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--classes", default="FRI,FRII", help="Comma-separated FIRST classes.")
def export_first_command(out, classes):
    """Write the bundled FIRST images of some classes as a new class folder OUT of FITS files, the
    way a survey's own labelled cutouts arrive (all splits together: the toolkit draws its own)."""
    from wgan.data.export_folder import export

    try:
        counts = export(out, [c.strip() for c in classes.split(",")])
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {out}: " + ", ".join(f"{n} {c}" for c, n in counts.items()))


@data_group.command("cache")
@click.option("--clear", is_flag=True, help="Remove every entry; the commands rebuild what they need.")
def cache_command(clear):
    """Where the preprocessed images and drawn split files are kept ($RADIOGAN_CACHE, else
    $XDG_CACHE_HOME/radiogan, else ~/.cache/radiogan), how much they take, and --clear to empty it.
    Rebuilding FIRST's entry takes about 11 s; a split file is drawn again identically."""
    from wgan.data import cache

    folder = cache.cache_dir()
    if clear:
        files, size = cache.clear()
        click.echo(f"removed {files} files ({size / 1e6:.1f} MB) from {folder}")
        return
    found = cache.entries()
    splits = sum(path.parent.name == "splits" for path in found)
    size = sum(path.stat().st_size for path in found)
    click.echo(f"{folder}: {len(found) - splits} preprocessed data sets and {splits} split files, {size / 1e6:.1f} MB")
