"""One table across several augmentation studies (e.g. the arms of a protocol diagnosis, each its
own `augment-eval --out` folder):

    augment-tools compare published=runs/diag-published fixed-pool=runs/diag-fixed ... [--out table.md]

Every row is an arm of a study against that study's own real-only arm, paired by fold and seed,
with the 95 % interval over runs and test images; `*` marks an interval that excludes 0. The
accuracy p of every row is adjusted by Holm over all the rows of the table: the family is every
arm compared, so list every arm that was looked at, not the ones that look best.

Two arms of different studies (e.g. the same protocol with two generators) against each other,
paired by fold and seed, over every pair and over the pairs where both runs learned:

    augment-tools compare --between new=docs/augment/tuned/asinh-balanced:r=1 old=docs/augment/tuned/balanced:r=1
"""

from __future__ import annotations

import json
from pathlib import Path

from .analysis import class_names, pair_two_way, paired_interval, scores
from .labels import attach_test_labels
from .multiple import holm
from .report import format_gain
from .report_sections import format_interval, format_p
from .shared_cells import read_cells


def table(studies: dict[str, Path]) -> str:
    loaded = {label: json.loads((folder / "results.json").read_text()) for label, folder in studies.items()}
    names = class_names(next(iter(loaded.values()))["summary"])
    gain_keys = ["accuracy", *(f"{c}/f1" for c in names)]
    head = ("| study | arm | pairs | accuracy | " + " | ".join(f"{c} gain" for c in ["accuracy", *names])
            + " | accuracy p | Holm p |")
    rows = [head, "|---|---|---|---|" + "---|" * (len(gain_keys) + 2)]
    # an arm whose cells another study also lists (reused) is one comparison: keyed by its cells
    raw, cells_of = {}, {}
    for label, results in loaded.items():
        for arm, s in results["summary"].items():
            if s.get("gain_two_way"):
                raw[label, arm] = s["gain_two_way"]["accuracy"]["p"]
                cells_of[label, arm] = str(_cells_key(results, arm))
    family = holm({cells: raw[row] for row, cells in reversed(cells_of.items())})  # first listing's p wins
    adjusted = {row: family[cells] for row, cells in cells_of.items()}
    for label, results in loaded.items():
        summary, reference = results["summary"], results["reference_arm"]
        ref = summary[reference]["scores"]
        rows.append(f"| {label} | {reference} (real only) | {summary[reference]['n_runs']} | "
                    f"{ref['accuracy']['mean']:.3f} ± {ref['accuracy']['std']:.3f} | "
                    + " | ".join(f"(F1 {ref[k]['mean']:.3f})" if k != "accuracy" else "" for k in gain_keys) + " |")
        for arm, s in summary.items():
            if arm == reference:
                continue
            rows.append(f"| {label} | {arm} | {s['gain']['accuracy']['n']} | "
                        f"{s['scores']['accuracy']['mean']:.3f} ± {s['scores']['accuracy']['std']:.3f} | "
                        + " | ".join(format_gain(summary, arm, k) for k in gain_keys)
                        + (f" | {format_p(raw[label, arm])} | {format_p(adjusted[label, arm])} |"
                           if (label, arm) in raw else " | runs only | |"))
        failed = sum(len(s["failures"]) for s in summary.values())
        if failed or results.get("errors"):
            rows.append(f"| {label} | failed to learn: {failed}; errors: {len(results.get('errors', []))} | | | |")
    return "\n".join(rows) + (f"\n\nHolm over the {len(family)} distinct arms with a two-way p in this table (an arm "
                               "listed by several studies with the same cells counts once).\n")


def _cells_key(results: dict, arm: str) -> tuple:
    """What identifies an arm's runs across study folders: its cells' folds, seeds and scores."""
    return tuple(sorted((c["fold"], c["seed"], c["best_epoch"], c["test_accuracy"])
                        for c in results["cells"] if c["arm"] == arm))


def arm_cells(folder: Path, arm: str) -> dict[tuple[int, int], dict]:
    """(fold, seed) -> cell of one arm of a study folder (its `cells/<arm>/` files)."""
    cells = read_cells(folder, arm)
    if not cells:
        raise ValueError(f"{folder / 'cells' / arm}: no cells of arm '{arm}'")
    return {(c["fold"], c["seed"]): c for c in cells}


def between(first: tuple[str, Path, str], second: tuple[str, Path, str]) -> str:
    """The paired difference first - second (each LABEL, study folder, arm) per score: over runs
    and test images, and over runs only (labelled as such)."""
    (label_a, folder_a, arm_a), (label_b, folder_b, arm_b) = first, second
    a, b = (_with_labels(arm_cells(folder, arm)) for folder, arm in ((folder_a, arm_a), (folder_b, arm_b)))
    pairs = sorted(set(a) & set(b))
    if not pairs:
        raise ValueError(f"{label_a} and {label_b} share no fold and seed")
    names = list(a[pairs[0]]["test"]["per_class"])
    keys = ["accuracy", *(f"{c}/f1" for c in names)]
    rows = [f"{label_a} ({folder_a}, {arm_a}) - {label_b} ({folder_b}, {arm_b}), paired by fold and seed:", "",
            "| pairs | " + " | ".join(f"{k} difference" for k in ["accuracy", *names]) + " | accuracy p |",
            "|---|" + "---|" * (len(keys) + 1)]
    healthy = [k for k in pairs if not a[k]["failure"] and not b[k]["failure"]]
    for label, chosen in ((f"all {len(pairs)}", pairs), (f"{len(healthy)} where both learned", healthy)):
        if not chosen:
            continue
        two_way = pair_two_way(a, b, chosen)
        if two_way:
            rows.append(f"| {label} (runs and test images) | " + " | ".join(format_interval(two_way[s]) for s in keys)
                        + f" | p {format_p(two_way['accuracy']['p'])} |")
        rows.append(f"| {label} (runs only) | " + " | ".join(
            format_interval(paired_interval([scores(a[k])[s] - scores(b[k])[s] for k in chosen])) for s in keys) + " | |")
    return "\n".join(rows) + "\n"


def _with_labels(cells: dict[tuple[int, int], dict]) -> dict[tuple[int, int], dict]:
    keys = list(cells)
    return dict(zip(keys, attach_test_labels([cells[k] for k in keys])))


def arm_argument(item: str) -> tuple[str, Path, str]:
    label, sep, rest = item.partition("=")
    folder, colon, arm = rest.rpartition(":")
    if not sep or not colon or not arm or not (Path(folder) / "cells").is_dir():
        raise ValueError(f"'{item}': expected LABEL=FOLDER:ARM, FOLDER an augment-eval --out folder with cells/")
    return label, Path(folder), arm
