"""radiogan-release: trained models as released files with cards, in a registry, in one table."""

from __future__ import annotations

from pathlib import Path

import click

from wgan import released

from . import options
from .options import USER_ERRORS

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
# what a released generator is scored with: matched-size floors, the copying test, train-on-generated
RELEASE_SCORING = {"n_per_class": 400, "seed": 0, "kid_subset": 100, "tstr_epochs": 30, "floor_size": 100,
                   "floor_draws": 10}


@options.group()
def release_group():
    """Release trained generators and classifiers: copy the model beside a JSON card (command,
    commit, data, scores, SHA-256), register it, and compare cards.

    \b
    Examples:
      radiogan-release generator runs/asinh-cv2/generator-best.pt checkpoints/generator-cv2 \\
          --command "wgan-train --split cv --fold 2 ..." --fold-default
      radiogan-release cards checkpoints/generator.json checkpoints/generator-cv*.json
    """


@release_group.command("generator")
@click.argument("export", type=EXISTING_FILE)
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--command", "train_command", required=True, help="The exact command that trained the run.")
@click.option("--scores", type=EXISTING_FILE, default=None,
              help="The scores.json wgan-eval wrote for EXPORT; default: score it now as releases are scored "
                   "(wgan-eval --n-per-class 400 --tstr-epochs 30, into EXPORT's folder under release-eval/).")
@click.option("--fold-default", is_flag=True,
              help="Register it as its cv fold's generator (first-cv<k>), or, trained with a seed other than 0, "
                   "as that fold's replica first-cv<k>-s<seed>.")
@options.registry(writes=True)
@options.device()
def generator_command(export, target, train_command, scores, fold_default, registry_path, device):
    """Release the generator EXPORT as TARGET.safetensors with its card TARGET.json (TARGET without
    suffix); the export is scored first unless --scores is given."""
    from wgan import registry, release

    try:
        if fold_default:  # refused before the scoring, not after it
            registry_path = released.writable(registry_path or released.user_registry())
        if scores is None:
            scores = _score(export, device)
        model_file, card_file = release.release(export, scores, target, train_command)
        click.echo(f"released {model_file} and {card_file}")
        if fold_default:
            entry = registry.register_card(registry_path, card_file, fold_default=True)
            click.echo(f"registered {registry.pinned(entry)} ({entry['id']}) in {registry_path}")
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None


def _score(export: Path, device: str) -> Path:
    from classifier.evaluate_generator import GeneratorEvaluation, evaluate_generator, write_outputs
    from classifier.export import load_classifier
    from wgan.device import select_device
    from wgan.released import EXTRACTOR
    from wgan.sampling import load_generator

    dev = select_device(device)
    result, images = evaluate_generator(load_generator(export, dev), load_classifier(EXTRACTOR, dev),
                                        GeneratorEvaluation(**RELEASE_SCORING))
    out = export.parent / "release-eval"
    write_outputs(result, images, out)
    return out / "scores.json"


@release_group.command("rescore")
@click.argument("scores", type=EXISTING_FILE)
@click.argument("target", type=click.Path(path_type=Path))
def rescore_command(scores, target):
    """Write the quality part of the released card TARGET.json again from a newer wgan-eval of the
    same generator (SCORES), keeping what SCORES lacks (e.g. train-on-generated)."""
    import json

    from wgan.atomic import write_text
    from wgan.release import rescore

    card_file = target.with_suffix(".json")
    try:
        write_text(card_file, json.dumps(rescore(card_file, scores), indent=2))
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"rescored {card_file}")


@release_group.command("classifier")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--command", "train_command", required=True, help="The exact command that trained the run.")
def classifier_command(run_dir, target, train_command):
    """Release the classifier of RUN_DIR (one fold of a classifier-train --out folder, e.g.
    runs/extractor/fold0, or a literature-split --out folder) as TARGET.safetensors with its card."""
    from classifier.release import release

    try:
        model_file, card_file = release(run_dir, target, train_command)
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"released {model_file} and {card_file}")


@release_group.command("register")
@click.argument("card", type=EXISTING_FILE)
@options.registry(writes=True)
@click.option("--promote", is_flag=True, help="Classifiers only: make it the best.")
@click.option("--fold-default", is_flag=True, help="Generators only: its fold's default (its replica for seeds not 0).")
def register_command(card, registry_path, promote, fold_default):
    """Register a released model by its CARD (augment-cml --promote is how a generator becomes the best)."""
    from wgan import registry

    try:
        registry_path = released.writable(registry_path or released.user_registry())
        entry = registry.register_card(registry_path, card, promote=promote, fold_default=fold_default)
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"registered {entry['id']} in {registry_path}")


@release_group.command("cards")
@click.argument("cards", nargs=-1, required=True, type=EXISTING_FILE)
def cards_command(cards):
    """One markdown table of generator release CARDS: matched-size quality against its floor, the
    copying test, recall, class fidelity and train-on-generated accuracy, one row per card."""
    import json

    from wgan.cards import table

    try:
        loaded = sorted((json.loads(p.read_text()) for p in cards), key=lambda c: str(c["data"]["fold"]))
        click.echo(table(loaded), nl=False)
    except (*USER_ERRORS, KeyError) as error:
        raise click.ClickException(f"not a generator release card ({error})") from None
