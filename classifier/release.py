"""Release a trained classifier with a JSON card (`radiogan-release classifier`): RUN_DIR/model.pt
is written as TARGET.safetensors (`wgan.safefile`) and TARGET.json holds the command, commit,
data, resolution, its own test metrics and the file's SHA-256.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from wgan import checkpoint, safefile
from wgan.atomic import write_text
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


def release(run_dir: Path, target: Path, command: str) -> tuple[Path, Path]:
    """Write the run's model.pt as target.safetensors and its card as target.json (each atomically)."""
    if not (run_dir / "model.pt").is_file():
        folds = sorted(p.name for p in run_dir.glob("fold*") if (p / "model.pt").is_file())
        hint = f": it holds the folds {', '.join(folds)}; release one, e.g. {run_dir / folds[0]}" if folds else ""
        raise ValueError(f"{run_dir} has no model.pt{hint}")
    model_file, card_file = target.with_suffix(safefile.SUFFIX), target.with_suffix(".json")
    checkpoint.save(checkpoint.load(run_dir / "model.pt", checkpoint.CLASSIFIER_EXPORT), model_file)
    write_text(card_file, json.dumps(card(run_dir, model_file, command), indent=2))
    return model_file, card_file
