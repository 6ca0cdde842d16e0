"""What running a study's cells on Dask costs: the same small sweep in this process, on a local
Dask cluster of 1 worker and of 2 workers, side by side in one run.

The sweep: real-only cells of FIRST fold 0 at 32 px, one epoch each, seeds 0..N-1 (the cells of
any study differ only in how long each trains). Prints one JSON document with the CPU flags:
wall seconds of each way, the time to start and stop a local cluster (once per sweep), the
engine's cost per cell beyond it (a 1-worker Dask run against this process: shipping the config,
loading the data in the worker, returning the record) and the speed-up of 2 workers over 1. Targets (issue "Studies that outgrow one machine"): 2 one-thread workers on 2 cores in
at most 0.55x the time of 1, and under 2 s of engine cost per cell.
Run:  python bench/dask_cells.py --cells 8 --epochs 10 --out bench/results/dask_cells-cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from time_to_quality import cpu_flags, print_report  # noqa: E402

from augment.engine import Engine, client  # noqa: E402
from augment.mixing import MixSpec  # noqa: E402
from augment.sweep import run_sweep  # noqa: E402
from augment.sweep_config import SweepConfig, build_arms  # noqa: E402
from classifier.engine import TrainSettings  # noqa: E402
from wgan.data import DataConfig  # noqa: E402


class OneWorker(Engine):
    """A local Dask cluster of one worker (Engine(1) alone runs the cells in this process)."""

    @property
    def in_process(self) -> bool:
        return False


def sweep_seconds(engine: Engine, cells: int, epochs: int, out: Path) -> tuple[float, list]:
    base = TrainSettings(epochs=epochs, dihedral=False)
    config = SweepConfig(generators=None, arms=build_arms([MixSpec(0)], base, False), folds=[0],
                         seeds=list(range(cells)), base=base, data=DataConfig(split="cv", resolution=32), out=out)
    start = time.perf_counter()
    outcome = run_sweep(config, engine, "cpu", progress=False)
    assert not outcome.errors and len(outcome.cells) == cells, outcome.errors
    return time.perf_counter() - start, [c["test"]["confusion_matrix"] for c in outcome.cells]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    seconds, results = {}, {}
    start = time.perf_counter()
    with client(OneWorker(1)):  # starting and stopping a local cluster, paid once per sweep
        pass
    startup = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        sweep_seconds(Engine(1), 1, 1, Path(tmp) / "warm")  # the data set cached, torch loaded
        for name, engine in (("in_process", Engine(1)), ("dask_1_worker", OneWorker(1)), ("dask_2_workers", Engine(2))):
            seconds[name], results[name] = sweep_seconds(engine, args.cells, args.epochs, Path(tmp) / name)
    report = {
        "bench": "dask_cells", "cells": args.cells, "epochs": args.epochs, "cpu_flags": cpu_flags(),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "cluster_start_stop_seconds": round(startup, 2),  # once per sweep
        "engine_seconds_per_cell": round((seconds["dask_1_worker"] - startup - seconds["in_process"]) / args.cells, 3),
        "two_workers_over_one": round(seconds["dask_2_workers"] / seconds["dask_1_worker"], 3),
        "same_results": results["in_process"] == results["dask_1_worker"] == results["dask_2_workers"],
        "targets": {"two_workers_over_one": 0.55, "engine_seconds_per_cell": 2.0},
    }
    print_report(report, args.out)


if __name__ == "__main__":
    main()
