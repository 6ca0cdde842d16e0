"""Release a trained generator under checkpoints/ with a JSON card.

    python -m wgan.release EXPORT SCORES checkpoints/generator --command "wgan-train ..."

copies the generator export EXPORT to checkpoints/generator.pt and writes
checkpoints/generator.json: the command that trained it, the commit, the data split, kimg, its
per-class quality scores and their real-vs-real floors (SCORES is the scores.json that
`wgan-eval` wrote for EXPORT; its generator hash must match) and the file's SHA-256.
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
        "network": json.loads(payload["config"])["network"],
        "data": json.loads(payload["config"])["data"],
        "data_fingerprint": payload["data_fingerprint"],
        "class_names": list(payload["class_names"]),
        "generator_iterations": int(payload["step"]),
        "kimg": float(payload["kimg"]),
        "extractor": scores["extractor"],
        "scores": _brief(scores["scores"]),
        "floor": _brief(scores["floor"]),
        "above_floor": scores["above_floor"],
        "astro": {group: s["astro"] for group, s in scores["scores"].items()},
        "astro_floor": {group: s["astro"] for group, s in scores["floor"].items()},
        "class_fidelity": scores.get("class_fidelity"),  # absent in scores written before it existed
        # usefulness: the CNN trained on generated images only vs on the real training split, tested on
        # the real test split, per class (wgan-eval --tstr-epochs; absent when it was not run)
        "train_on_generated": scores.get("tstr"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="generator export, e.g. runs/small-cv0/generator-best.pt")
    parser.add_argument("scores", type=Path, help="scores.json written by wgan-eval for that export")
    parser.add_argument("target", type=Path, help="path without suffix, e.g. checkpoints/generator")
    parser.add_argument("--command", required=True, help="the exact command that trained the run")
    args = parser.parse_args()
    info = card(args.export, args.scores, args.command)
    with atomic_path(args.target.with_suffix(".pt")) as tmp:
        shutil.copyfile(args.export, tmp)
    info["file"] = args.target.with_suffix(".pt").name
    write_text(args.target.with_suffix(".json"), json.dumps(info, indent=2))
    print(f"released {args.target.with_suffix('.pt')} and {args.target.with_suffix('.json')}")


if __name__ == "__main__":
    main()
