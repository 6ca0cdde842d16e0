"""How many corner cases flip between two seeds of the same quick augment-cml classifiers: the
noise level the corner-case gate (any flip fails) is up against.

    python docs/cml/seed_noise.py [GENERATOR]     # default: checkpoints/generator.pt; ~2 CPU-minutes

Trains the quick check's CNN cells (fold 0, 10 epochs, real only and r=2) for seeds 0 and 1 in
runs/cml-noise and prints, per arm, the cases right under seed 0 and wrong under seed 1.
"""

import json
import sys
from pathlib import Path

from augment import cml, corner_cases
from wgan import released
from wgan.sampling import load_generator

checkpoint = Path(sys.argv[1] if len(sys.argv) > 1 else "checkpoints/generator.pt")
settings = cml.CmlSettings(**cml.QUICK)
data = cml._data(load_generator(checkpoint), settings)
paths = cml.Paths(checkpoint, Path("runs/cml-noise"))
_, cells = cml._sweep(paths, settings, data, "cnn", settings.epochs, [0], [0, 1], True)
cases = json.loads(released.CORNER_CASES.read_text())
right = {(c["arm"], c["seed"]): corner_cases.outcomes(cases, c["test"]["predicted"]) for c in cells}
for arm in ("r=0", f"r={settings.ratio:g}"):
    a, b = right[(arm, 0)], right[(arm, 1)]
    print(json.dumps({"arm": arm, "right_seed0": sum(a.values()), "right_seed1": sum(b.values()),
                      "flipped_seed0_to_seed1": len(corner_cases.flips(a, b))}))
