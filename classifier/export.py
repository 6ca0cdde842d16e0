"""Classifier export files: weights plus everything needed to rebuild and trust them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from wgan import checkpoint

from .models import build_model


def save_classifier(model: nn.Module, settings: dict, data: dict, resolution: int, class_names: list[str],
                    metrics: dict, path: Path) -> None:
    checkpoint.save({
        "format": checkpoint.CLASSIFIER_EXPORT,
        "version": checkpoint.FORMAT_VERSION,
        "model": settings["model"],
        "resolution": resolution,
        "class_names": list(class_names),
        "settings": json.dumps(settings),
        "data": json.dumps(data),
        "metrics": json.dumps(metrics),
        "state_dict": model.state_dict(),
    }, path)


@dataclass
class LoadedClassifier:
    model: nn.Module
    name: str
    resolution: int
    class_names: list[str]
    data: dict
    file_hash: str
    metrics: dict = field(default_factory=dict)  # what training reported: "valid" and/or "test" reports

    def health_report(self) -> dict | None:
        """The report that says whether it learned: its validation split's, else its test split's."""
        for split in ("valid", "test"):
            if isinstance(self.metrics.get(split), dict) and "confusion_matrix" in self.metrics[split]:
                return self.metrics[split] | {"split": "validation" if split == "valid" else split}
        return None


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> LoadedClassifier:
    payload = checkpoint.load(path, checkpoint.CLASSIFIER_EXPORT)
    try:
        model = build_model(payload["model"], int(payload["resolution"]), len(payload["class_names"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, ValueError, RuntimeError) as error:
        raise checkpoint.CheckpointError(f"{path}: classifier export does not match this model code ({error})") from None
    return LoadedClassifier(model=model.to(device).eval(), name=payload["model"], resolution=int(payload["resolution"]),
                            class_names=list(payload["class_names"]), data=json.loads(payload["data"]),
                            file_hash=checkpoint.file_hash(path), metrics=json.loads(payload.get("metrics") or "{}"))
