"""augment-tools: what augment-eval studies are read with besides their own reports."""

from __future__ import annotations

from pathlib import Path

import click

from . import options
from .options import USER_ERRORS

OUT = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                   help="Also write the table to this file.")


@options.group()
def tools_group():
    """Tables across augment-eval studies, the generator scores that predict a gain, the corner-case
    list augment-cml tracks, and a deliberately degraded generator for testing the checks.

    \b
    Examples:
      augment-tools compare balanced=docs/augment/tuned/balanced filter=docs/augment/tuned/asinh-filter
      augment-tools compare --between new=runs/a:r=1 old=runs/b:r=1
    """


def _echo(text: str, out: Path | None) -> None:
    from wgan.atomic import write_text

    if out:
        write_text(out, text)
    click.echo(text, nl=False)


@tools_group.command("compare")
@click.argument("studies", nargs=-1)
@click.option("--between", nargs=2, default=None, metavar="LABEL=FOLDER:ARM LABEL=FOLDER:ARM",
              help="Instead: the paired difference between two arms of two studies.")
@OUT
def compare_command(studies, between, out):
    """One table of every arm of the STUDIES (LABEL=FOLDER, each an augment-eval --out folder)
    against its own study's real-only arm, with two-way intervals and Holm p over all rows."""
    from augment import compare

    try:
        if between:
            text = compare.between(*(compare.arm_argument(item) for item in between))
        elif studies:
            folders = {}
            for item in studies:
                label, sep, folder = item.partition("=")
                if not sep or not (Path(folder) / "results.json").is_file():
                    raise click.BadParameter(f"'{item}': expected LABEL=FOLDER with a results.json",
                                             param_hint="STUDIES")
                folders[label] = Path(folder)
            text = compare.table(folders)
        else:
            raise click.UsageError("give LABEL=FOLDER studies, or --between")
        _echo(text, out)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None


@tools_group.command("predictors")
@click.argument("study", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("arm")
@click.argument("cards", nargs=-1, required=True)
@click.option("--and", "more", nargs=3, multiple=True, metavar="STUDY ARM CARDS",
              help="Pool another study: its arm and its cards (or registry ids), comma-separated.")
@options.registry()
@OUT
def predictors_command(study, arm, cards, more, registry_path, out):
    """Which generator score predicts what its images do to a classifier: Spearman's rank
    correlation, over (fold, class) pairs, of each release-card score (CARDS: one per fold, or
    registry ids) with the F1 gain of ARM over STUDY's real-only arm."""
    from augment import predictors

    try:
        pooled = tuple((Path(s), a, predictors.cards_by_fold(c.split(","), registry_path)) for s, a, c in more)
        _echo(predictors.table(study, arm, predictors.cards_by_fold(list(cards), registry_path), pooled), out)
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None


@tools_group.command("corner-cases")
@click.argument("study", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list-version", type=click.IntRange(1), default=1, help="The version number the list carries.")
def corner_cases_command(study, target, list_version):
    """Build the list of difficult test sources augment-cml tracks (TARGET, e.g.
    checkpoints/corner_cases.json) from the real-only cells of the augment-eval folder STUDY."""
    import json

    from augment.corner_cases import from_sweep
    from wgan.atomic import write_text

    try:
        cases = from_sweep(study, list_version)
        write_text(target, json.dumps(cases, indent=2))
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {target}: {len(cases['cases'])} cases {cases['counts']}")


@tools_group.command("degrade")
@click.argument("source")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--noise", type=click.FloatRange(0), default=0.3, help="Noise std as a fraction of each tensor's std.")
@click.option("--seed", type=options.SEED, default=0)
def degrade_command(source, target, noise, seed):
    """Write TARGET, a deliberately worse copy of the generator SOURCE (an export or a released
    name), to see the generator checks fail: seeded Gaussian noise on every weight."""
    from augment.degrade import degrade
    from wgan.released import find_generator

    try:
        degrade(find_generator(source), target, noise, seed)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"wrote {target}")


@tools_group.command("share-cells")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--with", "others", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A study folder to share with; default: the folders each study reused cells from (--reuse-from).")
def share_cells_command(folders, others):
    """Keep each cell of the augment-eval FOLDERS that is a byte-identical copy of a cell of a
    folder it reused from as a reference (cells/references.json: path and SHA-256) instead of a
    copy. Every reader follows the references; share a study after the studies it reused from.

    \b
    Example:
      augment-tools share-cells docs/augment/tuned/control docs/augment/tuned/teacher
    """
    import json

    from augment.shared_cells import share

    for folder in folders:
        try:
            reused_from = others or [Path(p) for p in
                                     json.loads((folder / "results.json").read_text())["config"].get("reuse_from", [])]
            removed = share(folder, reused_from)
        except (*USER_ERRORS, KeyError) as error:
            raise click.ClickException(f"{folder}: {error}") from None
        click.echo(f"{folder}: {removed} copies replaced by references")
