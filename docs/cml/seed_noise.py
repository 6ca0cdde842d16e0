"""How many of the released corner cases flip between two seeds of the same classifier recipe: the
noise level the corner-case gate of augment-cml has to see through.

    python docs/cml/seed_noise.py                     # the quick check's cells; ~2 CPU-minutes
    python docs/cml/seed_noise.py --cells docs/augment/tuned/balanced:r=0 docs/augment/tuned/asinh-filter:r=1

Without --cells: trains the quick check's CNN cells (fold 0, 10 epochs, real only and r=2 with
checkpoints/generator.pt) for seeds 0 and 1 in runs/cml-noise. With --cells FOLDER:ARM ...: reads
committed augment-eval cells (trained nothing) and compares seed 0 with seed 1 fold by fold. Each
line counts the cases right under seed 0 and wrong under seed 1, and the other way.
"""

import argparse
import glob
import json
from pathlib import Path

from augment import cml, corner_cases
from wgan import released
from wgan.sampling import load_generator

CASES = json.loads(released.CORNER_CASES.read_text())


def flips(a: list[int], b: list[int]) -> dict:
    right_a, right_b = corner_cases.outcomes(CASES, a), corner_cases.outcomes(CASES, b)
    return {"right_to_wrong": len(corner_cases.flips(right_a, right_b)),
            "wrong_to_right": len(corner_cases.flips(right_b, right_a))}


def quick_cells() -> None:
    checkpoint = Path("checkpoints/generator.pt")
    settings = cml.CmlSettings(**cml.QUICK)
    data = cml.classifier_data(load_generator(checkpoint), settings)
    _, cells = cml.train_cells(cml.Paths(checkpoint, Path("runs/cml-noise")), settings, data, "cnn", settings.epochs,
                               [0], [0, 1], True)
    predicted = {(c["arm"], c["seed"]): c["test"]["predicted"] for c in cells}
    for arm in ("r=0", f"r={settings.ratio:g}"):
        print(json.dumps({"arm": arm, "fold": 0, **flips(predicted[(arm, 0)], predicted[(arm, 1)])}))


def committed_cells(specs: list[str]) -> None:
    for spec in specs:
        folder, arm = spec.rsplit(":", 1)
        predicted = {}
        for path in glob.glob(f"{folder}/cells/{arm}/*.json"):
            cell = json.loads(Path(path).read_text())
            predicted[(cell["fold"], cell["seed"])] = cell["test"]["predicted"]
        for fold in sorted({f for f, s in predicted if (f, 0) in predicted and (f, 1) in predicted}):
            print(json.dumps({"cells": spec, "fold": fold, **flips(predicted[(fold, 0)], predicted[(fold, 1)])}))


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--cells", nargs="+", metavar="FOLDER:ARM", help="committed augment-eval cells instead")
args = parser.parse_args()
if args.cells:
    committed_cells(args.cells)
else:
    quick_cells()
