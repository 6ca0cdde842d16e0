"""The true class of every test image a cell was scored on, for intervals over test images.

Cells store the predicted class of each test image; cells written since store the labels beside
them. For older cells the labels are read again from the test split their identity names, and
checked against the confusion matrix the cell stored, so a different split or order is caught
rather than scored."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from classifier.engine import content_hash
from classifier.metrics import confusion_matrix
from wgan.data import DataConfig, load_dataset


def attach_test_labels(cells: list[dict]) -> list[dict]:
    """The cells with `test['labels']`; raises ValueError where the labels cannot be had or do
    not reproduce a cell's stored confusion matrix. Cells without per-image predictions (made by
    hand) are returned as they are: they get intervals over runs only."""
    loaded: dict[str, dict] = {}
    out = []
    for cell in cells:
        test = cell["test"]
        if "predicted" not in test:
            out.append(cell)
            continue
        if "labels" not in test:
            data = cell["identity"]["data"]
            key = json.dumps(data, sort_keys=True)
            if key not in loaded:
                split = load_dataset(replace(DataConfig(**data), subset="test"))
                loaded[key] = {"labels": split.labels.tolist(), "images": content_hash(split)}
            test = loaded[key] | test
        _check(cell, test)
        out.append(cell | {"test": test})
    return out


def _check(cell: dict, test: dict) -> None:
    name = f"{cell['arm']} fold {cell['fold']} seed {cell['seed']}"
    if len(test["labels"]) != len(test["predicted"]):
        raise ValueError(f"cell {name}: {len(test['predicted'])} predictions for {len(test['labels'])} test labels")
    k = len(test["class_names"])
    counts = confusion_matrix(np.asarray(test["labels"]), np.asarray(test["predicted"]), k)
    if counts.tolist() != test["confusion_matrix"]:
        raise ValueError(f"cell {name}: its predictions and the test labels do not give the confusion matrix it "
                         "stored (scored on other test images?)")
