"""Release a trained generator under checkpoints/ with a JSON card.

    python -m wgan.release EXPORT SCORES checkpoints/generator --command "wgan-train ..."

copies the generator export EXPORT to checkpoints/generator.pt and writes
checkpoints/generator.json: the command that trained it, the commit, the data split, kimg, its
per-class quality scores and their real-vs-real floors (SCORES is the scores.json that
`wgan-eval` wrote for EXPORT; its generator hash must match) and the file's SHA-256.

    python -m wgan.release --rescore SCORES checkpoints/generator

writes the quality part of a released card again from a newer `wgan-eval` of the same generator
(matched-size scores, copying test), keeping what SCORES lacks (e.g. train-on-generated).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from . import checkpoint
from .atomic import atomic_path, write_text
from .config import TrainConfig
from .data.cache import file_digest

KEPT_SCORES = ("n", "n_reference", "fid", "kid", "kid_std", "precision", "recall")


def _brief(scores: dict) -> dict:
    return {group: {k: s[k] for k in KEPT_SCORES} for group, s in scores.items()}


def card(export: Path, scores_file: Path, command: str) -> dict:
    payload = checkpoint.load(export, checkpoint.GENERATOR_EXPORT)
    scores = json.loads(scores_file.read_text())
    digest = file_digest(export)
    if not digest.startswith(scores["generator"]["file_hash"]):
        raise ValueError(f"{scores_file} scores generator {scores['generator']['file_hash']}, not {export} ({digest[:16]})")
    cfg = TrainConfig.from_json(payload["config"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "file": "generator.pt",
        "sha256": digest,
        "command": command,
        "commit": commit or None,
        "preset": cfg.preset,
        "seed": cfg.seed,  # a fold's release is seed 0; its replicas (first-cv<k>-s<seed>) other seeds
        "network": json.loads(payload["config"])["network"],
        "data": json.loads(payload["config"])["data"],
        "data_fingerprint": payload["data_fingerprint"],
        "class_names": list(payload["class_names"]),
        "generator_iterations": int(payload["step"]),
        "kimg": float(payload["kimg"]),
        **quality(scores),
        # usefulness: the CNN trained on generated images only vs on the real training split, tested on
        # the real test split, per class (wgan-eval --tstr-epochs; absent when it was not run)
        "train_on_generated": scores.get("tstr"),
    }


def quality(scores: dict) -> dict:
    """The quality part of a card, from wgan-eval's scores.json."""
    return {
        "extractor": scores["extractor"],
        # the headline: at matched size against the spread of unseen real images, and the copying test
        "matched": scores.get("matched"),
        "copying": scores.get("copying"),
        "scores": _brief(scores["scores"]),
        "floor": _brief(scores["floor"]),
        "above_floor": scores["above_floor"],
        "astro": {group: s["astro"] for group, s in scores["scores"].items()},
        "astro_floor": {group: s["astro"] for group, s in scores["floor"].items()},
        "class_fidelity": scores.get("class_fidelity"),  # absent in scores written before it existed
    }


def rescore(card_path: Path, scores_file: Path) -> dict:
    """A released card with its quality part from a newer scores.json of the same generator."""
    info = json.loads(card_path.read_text())
    scores = json.loads(scores_file.read_text())
    if not info["sha256"].startswith(scores["generator"]["file_hash"]):
        raise ValueError(f"{scores_file} scores generator {scores['generator']['file_hash']}, not the one "
                         f"{card_path} releases ({info['sha256'][:16]})")
    return info | quality(scores) | ({"train_on_generated": scores["tstr"]} if scores.get("tstr") else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rescore", nargs=2, type=Path, metavar=("SCORES", "TARGET"),
                        help="instead: refresh the quality part of the released card TARGET.json from SCORES")
    parser.add_argument("export", type=Path, nargs="?", help="generator export, e.g. runs/small-cv0/generator-best.pt")
    parser.add_argument("scores", type=Path, nargs="?", help="scores.json written by wgan-eval for that export")
    parser.add_argument("target", type=Path, nargs="?", help="path without suffix, e.g. checkpoints/generator")
    parser.add_argument("--command", help="the exact command that trained the run")
    args = parser.parse_args()
    if args.rescore:
        scores, target = args.rescore
        try:
            info = rescore(target.with_suffix(".json"), scores)
        except (OSError, ValueError, KeyError) as error:
            parser.error(str(error))
        write_text(target.with_suffix(".json"), json.dumps(info, indent=2))
        print(f"rescored {target.with_suffix('.json')}")
        return
    if not (args.export and args.scores and args.target and args.command):
        parser.error("give EXPORT SCORES TARGET --command, or --rescore SCORES TARGET")
    info = card(args.export, args.scores, args.command)
    with atomic_path(args.target.with_suffix(".pt")) as tmp:
        shutil.copyfile(args.export, tmp)
    info["file"] = args.target.with_suffix(".pt").name
    write_text(args.target.with_suffix(".json"), json.dumps(info, indent=2))
    print(f"released {args.target.with_suffix('.pt')} and {args.target.with_suffix('.json')}")


if __name__ == "__main__":
    main()
