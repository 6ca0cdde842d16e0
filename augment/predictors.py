"""Which generator score predicts what its images do to a classifier?

    augment-tools predictors STUDY_FOLDER ARM CARD_FOLD0.json CARD_FOLD1.json ... [--out table.md]
    augment-tools predictors STUDY_A ARM CARDS_A... --and STUDY_B ARM CARD,CARD,...   # pooled

For every (fold, class) pair: the F1 gain of ARM over the study's real-only arm (mean over the
seeds, paired by seed), and that fold's generator scores for that class from its release card
(`radiogan-release generator`): FID, KID, recall, class fidelity and, when the card has it, the F1 of
a classifier trained on generated images only. Spearman's rank correlation of each score with the
gain across the pairs says which score, if any, ranks generators by usefulness. With 5 folds x 4
classes it is a coarse answer; the table gives n and the p-value. `--and` pools further studies
with their own generators (e.g. the same protocol run with two releases: 40 pairs), and a card
may be named by its registry id (`generator-3f73ca9bb7cc`: the scores the registry kept of it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from .shared_cells import read_cells

# score -> (how to read it from a card for a class, whether higher means a better generator)
SCORES = {
    "FID": (lambda card, c: card["scores"][c]["fid"], False),
    "FID / floor": (lambda card, c: card["scores"][c]["fid"] / card["floor"][c]["fid"], False),
    "KID": (lambda card, c: card["scores"][c]["kid"], False),
    "recall": (lambda card, c: card["scores"][c]["recall"], True),
    "precision": (lambda card, c: card["scores"][c]["precision"], True),
    "class fidelity": (lambda card, c: card["class_fidelity"]["scores"][c], True),
    "train-on-generated F1": (lambda card, c: card["train_on_generated"]["synthetic"]["f1"][c], True),
}


def gains(study: Path, arm: str) -> dict[tuple[int, str], float]:
    """(fold, class) -> mean over seeds of the paired F1 gain of `arm` over real only."""
    cells = read_cells(study)
    by = {(c["arm"], c["fold"], c["seed"]): c for c in cells}
    out: dict[tuple[int, str], list[float]] = {}
    for (name, fold, seed), cell in by.items():
        base = by.get(("r=0", fold, seed))
        if name != arm or base is None:
            continue
        for c in cell["test"]["per_class"]:
            out.setdefault((fold, c), []).append(cell["test"]["per_class"][c]["f1"] - base["test"]["per_class"][c]["f1"])
    return {k: float(np.mean(v)) for k, v in out.items()}


Group = tuple[Path, str, dict[int, dict]]  # a study folder, its arm, and fold -> card of its generators


def table(study: Path, arm: str, cards: dict[int, dict], more: tuple[Group, ...] = ()) -> str:
    measured = [(gains(folder, name), by_fold) for folder, name, by_fold in [(study, arm, cards), *more]]
    rows = ["| score | better when | Spearman rho with the F1 gain | p | pairs (fold, class) |", "|---|---|---|---|---|"]
    for name, (read, higher) in SCORES.items():
        pairs = [(read(by_fold[f], c), g) for found, by_fold in measured for (f, c), g in found.items()
                 if f in by_fold and _has(read, by_fold[f], c)]
        if len(pairs) < 3:
            rows.append(f"| {name} | {'higher' if higher else 'lower'} | not on the cards | | {len(pairs)} |")
            continue
        if len({score for score, _ in pairs}) == 1:
            rows.append(f"| {name} | {'higher' if higher else 'lower'} | the same on every card | | {len(pairs)} |")
            continue
        rho, p = spearmanr(*zip(*pairs))
        rows.append(f"| {name} | {'higher' if higher else 'lower'} | {rho:+.2f} | {p:.2f} | {len(pairs)} |")
    return "\n".join(rows) + "\n"


def _has(read, card: dict, c: str) -> bool:
    try:
        return read(card, c) is not None
    except (KeyError, TypeError):
        return False


def read_card(name: str, registry: Path | None = None) -> dict:
    """A release card file, or a registry id: that entry's scores (the registry keeps them) and
    data, from `registry`, else the first of the user's and the packaged registry that has it."""
    if Path(name).is_file():
        return json.loads(Path(name).read_text())
    from wgan.registry import RegistryError, load
    from wgan.released import registries

    for known in registries(registry):
        item = next((e for e in load(known)["entries"] if e["id"] == name), None)
        if item is not None:
            return {**item["metrics"], "data": item["data"]}
    raise RegistryError(f"no registry entry '{name}' in {', '.join(map(str, registries(registry)))}")


def cards_by_fold(names: list[str], registry: Path | None = None) -> dict[int, dict]:
    cards = [read_card(name, registry) for name in names]
    return {int(card["data"]["fold"]): card for card in cards}
