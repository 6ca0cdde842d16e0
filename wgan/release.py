"""Release a trained generator with a JSON card (`radiogan-release generator`).

`release` writes a generator export as TARGET.safetensors (weights in a safetensors file, the
config and provenance in its header: loadable without torch's pickle, see `wgan.safefile`) and
TARGET.json: the command that trained it, the commit, the data split, kimg, its per-class
quality scores and their real-vs-real floors (from the scores.json `wgan-eval` wrote for that
export; its generator hash must match) and the SHA-256 of the released file and of the export
that was scored. `rescore` writes the quality part of a released card again
from a newer `wgan-eval` of the same generator (`radiogan-release rescore`), keeping what the
scores lack (e.g. train-on-generated).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import checkpoint, safefile
from .atomic import write_text
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
    """A released card with its quality part from a newer scores.json of the same generator (of
    the released file, or of the export it was released from)."""
    info = json.loads(card_path.read_text())
    scores = json.loads(scores_file.read_text())
    same = [info["sha256"], info.get("scored_sha256", info["sha256"])]
    if not any(digest.startswith(scores["generator"]["file_hash"]) for digest in same):
        raise ValueError(f"{scores_file} scores generator {scores['generator']['file_hash']}, not the one "
                         f"{card_path} releases ({info['sha256'][:16]})")
    return info | quality(scores) | ({"train_on_generated": scores["tstr"]} if scores.get("tstr") else {})


def release(export: Path, scores_file: Path, target: Path, command: str) -> tuple[Path, Path]:
    """Write `export` as target.safetensors and its card as target.json (each atomically)."""
    info = card(export, scores_file, command)
    model_file, card_file = target.with_suffix(safefile.SUFFIX), target.with_suffix(".json")
    checkpoint.save(checkpoint.load(export, checkpoint.GENERATOR_EXPORT), model_file)  # same content, digest checked
    info |= {"file": model_file.name, "sha256": file_digest(model_file), "scored_sha256": info["sha256"]}
    write_text(card_file, json.dumps(info, indent=2))
    return model_file, card_file
