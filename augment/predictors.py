"""Which generator score predicts what its images do to a classifier?

    python -m augment.predictors STUDY_FOLDER ARM CARD_FOLD0.json CARD_FOLD1.json ... [--out table.md]

For every (fold, class) pair: the F1 gain of ARM over the study's real-only arm (mean over the
seeds, paired by seed), and that fold's generator scores for that class from its release card
(`python -m wgan.release`): FID, KID, recall, class fidelity and, when the card has it, the F1 of
a classifier trained on generated images only. Spearman's rank correlation of each score with the
gain across the pairs says which score, if any, ranks generators by usefulness. With 5 folds x 4
classes it is a coarse answer; the table gives n and the p-value.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from wgan.atomic import write_text

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
    cells = [json.loads(p.read_text()) for p in (study / "cells").rglob("*.json")]
    by = {(c["arm"], c["fold"], c["seed"]): c for c in cells}
    out: dict[tuple[int, str], list[float]] = {}
    for (name, fold, seed), cell in by.items():
        base = by.get(("r=0", fold, seed))
        if name != arm or base is None:
            continue
        for c in cell["test"]["per_class"]:
            out.setdefault((fold, c), []).append(cell["test"]["per_class"][c]["f1"] - base["test"]["per_class"][c]["f1"])
    return {k: float(np.mean(v)) for k, v in out.items()}


def table(study: Path, arm: str, cards: dict[int, dict]) -> str:
    measured = gains(study, arm)
    rows = ["| score | better when | Spearman rho with the F1 gain | p | pairs (fold, class) |", "|---|---|---|---|---|"]
    for name, (read, higher) in SCORES.items():
        pairs = [(read(cards[f], c), g) for (f, c), g in measured.items()
                 if f in cards and _has(read, cards[f], c)]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path)
    parser.add_argument("arm", help="e.g. r=1")
    parser.add_argument("cards", nargs="+", type=Path, help="release cards, one per fold")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cards = {}
    for path in args.cards:
        card = json.loads(path.read_text())
        cards[int(card["data"]["fold"])] = card
    text = table(args.study, args.arm, cards)
    if args.out:
        write_text(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
