"""Release a trained classifier under checkpoints/ with a JSON card.

    python -m classifier.release RUN_DIR checkpoints/extractor --command "classifier-train ..."

copies RUN_DIR/model.pt to checkpoints/extractor.pt and writes checkpoints/extractor.json with
the command, commit, data, resolution, its own test metrics and the file's SHA-256.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from wgan.atomic import atomic_path, write_text
from wgan.data.cache import file_digest


def card(run_dir: Path, model_file: Path, command: str) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "file": model_file.name,
        "sha256": file_digest(model_file),
        "command": command,
        "commit": commit or None,
        "model": metrics["model"],
        "data": metrics["data"],
        "data_fingerprint": metrics["data_fingerprint"],
        "counts": metrics["counts"],
        "best_epoch": metrics["best_epoch"],
        "settings": metrics["settings"],
        "test": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"], "brier": test["brier"],
                 "f1": {name: m["f1"] for name, m in test["per_class"].items()},
                 "confusion_matrix": test["confusion_matrix"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("target", type=Path, help="path without suffix, e.g. checkpoints/extractor")
    parser.add_argument("--command", required=True, help="the exact command that trained the run")
    args = parser.parse_args()
    model_file = args.target.with_suffix(".pt")
    with atomic_path(model_file) as tmp:
        shutil.copyfile(args.run_dir / "model.pt", tmp)
    write_text(args.target.with_suffix(".json"), json.dumps(card(args.run_dir, model_file, args.command), indent=2))
    print(f"released {model_file} and {args.target.with_suffix('.json')}")


if __name__ == "__main__":
    main()
