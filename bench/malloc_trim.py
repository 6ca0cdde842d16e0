"""What Dask's worker setting MALLOC_TRIM_THRESHOLD_=65536 costs a cell: the median CNN training
step (32 px, batch 32, one thread; bench/classifier_step.py) in fresh processes without and with
the variable, alternated so that a change in the machine's speed during the run shows in both
columns.
Prints one JSON document with the CPU flags. Local study workers start without it
(augment/engine.py, KEEP_GLIBC_MALLOC).
Run:  python bench/malloc_trim.py --steps 400 --repeats 5 --out bench/results/malloc_trim-cpu.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from time_to_quality import cpu_flags, print_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the training step of bench/classifier_step.py (CNN, 32 px, batch 32, fp32), in a fresh process
STEPS = """
import sys
sys.path.insert(0, "bench")
from classifier_step import step_seconds
print(step_seconds("cnn", 32, 32, False, int(sys.argv[1]), 20))
"""


def seconds(steps: int, trim: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    env["OMP_NUM_THREADS"] = "1"
    if trim is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = trim
    out = subprocess.run([sys.executable, "-c", STEPS, str(steps)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    without, with_dask = [], []
    for _ in range(args.repeats):
        without.append(round(seconds(args.steps, None) * 1000, 3))
        with_dask.append(round(seconds(args.steps, "65536") * 1000, 3))
    report = {
        "bench": "malloc_trim", "steps": args.steps, "cpu_flags": cpu_flags(),
        "step_ms_without": without, "step_ms_with_65536": with_dask,
        "slowdown_median": round(statistics.median(w / o for w, o in zip(with_dask, without)), 3),
    }
    print_report(report, args.out)


if __name__ == "__main__":
    main()
