"""Per-class checkpoint selection: the best generator of each class, chosen on the training split.

A run with periodic evaluation (`wgan-train --eval-every N`) keeps the EMA generator of every
evaluation under `candidates/` and logs that evaluation's per-class scores in `stats.jsonl`.
Those scores compare generated images with the run's own *training* images only, so choosing
among candidates on them lets nothing of the validation or test split into the choice (the
published protocol picks one checkpoint per class by a histogram distance; any logged score can
be used here). The choice is written as one composite export that every command loads like any
other generator export (`wgan.networks.PerClassGenerator`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint
from .config import TrainConfig
from .training_loop import CANDIDATES, candidate_path


@dataclass(frozen=True)
class Score:
    key: str  # stats key with {} for the class name
    lower_is_better: bool


SCORES = {
    "fid": Score("Metrics/fid_{}", True),
    "kid": Score("Metrics/kid_{}", True),
    "fidelity": Score("Metrics/fidelity_{}", False),  # share of the class's samples the extractor puts in it
    # F1 on the run's training images of a CNN trained on the samples only (wgan-train --eval-tstr-epochs)
    "tstr": Score("Metrics/tstr_{}", False),
}


class SelectionError(ValueError):
    pass


def candidate_scores(run_dir: Path) -> dict[int, dict[str, float]]:
    """step -> logged stats of every evaluation whose candidate export exists."""
    stats_file = run_dir / "stats.jsonl"
    if not stats_file.is_file():
        raise SelectionError(f"{run_dir}: no stats.jsonl (not a wgan-train run directory)")
    rows: dict[int, dict[str, float]] = {}
    for line in stats_file.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the evaluations around it are intact
        if any(k.startswith("Metrics/") for k in row) and candidate_path(run_dir, row["step"]).is_file():
            rows.setdefault(row["step"], {}).update(row)
    if not rows:
        raise SelectionError(f"{run_dir}: no candidate generators under {CANDIDATES}/ with logged scores "
                             "(train with --eval-every N to keep one per evaluation)")
    return rows


def choose(run_dir: Path, score: str, class_names: list[str]) -> dict[str, dict]:
    """class -> {'step', 'value'}: the candidate with the best score for that class."""
    if score not in SCORES:
        raise SelectionError(f"unknown score '{score}'; choose from {', '.join(SCORES)}")
    rule = SCORES[score]
    rows = candidate_scores(run_dir)
    chosen = {}
    for name in class_names:
        key = rule.key.format(name)
        scored = [(row[key], step) for step, row in sorted(rows.items()) if key in row]
        if not scored:
            raise SelectionError(f"{run_dir}: no candidate has the score {key}")
        value, step = (min if rule.lower_is_better else max)(scored)
        chosen[name] = {"step": step, "value": value}
    return chosen


def write_composite(run_dir: Path, score: str, out: Path) -> dict[str, dict]:
    """Write the per-class composite export of a run to `out`; returns the choice per class."""
    first = checkpoint.load(candidate_path(run_dir, min(candidate_scores(run_dir))), checkpoint.GENERATOR_EXPORT)
    chosen = choose(run_dir, score, list(first["class_names"]))
    members, payloads = [], []
    for name in first["class_names"]:
        payload = checkpoint.load(candidate_path(run_dir, chosen[name]["step"]), checkpoint.GENERATOR_EXPORT)
        if not _same_network_and_data(payload, first):
            raise SelectionError(f"{run_dir}: candidates come from different runs or data; cannot combine them")
        members.append(payload["state_dict"])
        payloads.append(payload)
    last = max(payloads, key=lambda p: p["step"])
    composite = {k: v for k, v in last.items() if k not in ("state_dict", "digest")}
    composite["members"] = members
    composite["selection"] = {"score": score, "chosen": chosen}
    checkpoint.save(composite, out)
    return chosen


def _same_network_and_data(a: dict, b: dict) -> bool:
    """Candidates of one run (its length may have changed on resume; its network and data not)."""
    ca, cb = TrainConfig.from_json(a["config"]), TrainConfig.from_json(b["config"])
    return ca.network == cb.network and ca.data == cb.data and a["data_fingerprint"] == b["data_fingerprint"]
