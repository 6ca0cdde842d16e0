"""What running a study's cells on Dask costs: the same small sweep in this process, on a local
Dask cluster of 1 worker and of 2 workers, side by side in one run.

The sweep: real-only cells of FIRST fold 0 at 32 px, seeds 0..N-1 (the cells of any study differ
only in how long each trains). This machine's speed drifts by up to 2x within minutes, so three
sweeps run one after another do not compare: every quantity is measured in `--rounds` rounds,
each timing all three ways and an empty cluster's start and stop back to back (the order rotates
from round to round), and the report gives the median over rounds of each round's own ratio or
difference, with every round's figures beside it. Prints one JSON document with the CPU flags:
the engine's cost per cell beyond the cluster's start (a 1-worker Dask run against this process:
shipping the config, loading the data in the worker, returning the record, and any slower
training inside the worker), how much longer the cells' own training took inside the worker (from
the `seconds` each cell records), and the speed-up of 2 workers over 1. Beside it, what this
machine gives two computations at once without any engine: the same cells split between two
plain processes, warmed up and started together, against this process alone (a VM's two vCPUs
need not be two free cores). Targets (issue "Studies that outgrow one machine"): 2 one-thread
workers on 2 cores in at most 0.55x the time of 1, and under 2 s of engine cost per cell.
Run:  python bench/dask_cells.py --cells 4 --epochs 100 --rounds 3 --out bench/results/dask_cells-100epochs-cpu.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
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


def sweep_seconds(engine: Engine, seeds: list[int], epochs: int, out: Path) -> tuple[float, list, float]:
    """Wall seconds of the sweep, its cells' confusion matrices, and the sum of the seconds each
    cell recorded (its own run, where it ran)."""
    base = TrainSettings(epochs=epochs, dihedral=False)
    config = SweepConfig(generators=None, arms=build_arms([MixSpec(0)], base, False), folds=[0],
                         seeds=seeds, base=base, data=DataConfig(split="cv", resolution=32), out=out)
    start = time.perf_counter()
    outcome = run_sweep(config, engine, "cpu", progress=False)
    assert not outcome.errors and len(outcome.cells) == len(seeds), outcome.errors
    return (time.perf_counter() - start, [c["test"]["confusion_matrix"] for c in outcome.cells],
            sum(c["seconds"] for c in outcome.cells))


def _half(seeds: list[int], epochs: int, out: Path, start, results) -> None:
    """One of two plain processes: warm up as the in-process way is warm, wait for the other, run."""
    sweep_seconds(Engine(1), [0], 1, out / "warm")
    start.wait()
    results.put((seeds[0], *sweep_seconds(Engine(1), seeds, epochs, out / "cells")))


def two_processes_seconds(cells: int, epochs: int, out: Path) -> tuple[float, list]:
    """The cells split between two plain processes started together: (wall seconds of the
    slower, the confusion matrices in seed order)."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    halves = [list(range(cells))[:cells // 2], list(range(cells))[cells // 2:]]
    processes = [context.Process(target=_half, args=(seeds, epochs, out / f"half{i}", start, results))
                 for i, seeds in enumerate(halves)]
    for process in processes:
        process.start()
    found = sorted(results.get() for _ in processes)
    for process in processes:
        process.join()
    return max(seconds for _, seconds, _, _ in found), [m for _, _, matrices, _ in found for m in matrices]


def start_stop_seconds() -> float:
    """Starting and stopping a local cluster of one worker, paid once per sweep."""
    start = time.perf_counter()
    with client(OneWorker(1)):
        pass
    return time.perf_counter() - start


def one_round(cells: int, epochs: int, out: Path, turn: int) -> dict:
    """Every way once, in an order that rotates with `turn`."""
    ways = [("in_process", Engine(1)), ("dask_1_worker", OneWorker(1)), ("dask_2_workers", Engine(2)), ("start_stop", None),
            ("two_processes", None)]
    ways = ways[turn % len(ways):] + ways[:turn % len(ways)]
    found = {}
    for name, engine in ways:
        if name == "start_stop":
            found[name] = (start_stop_seconds(),)
        elif name == "two_processes":
            found[name] = two_processes_seconds(cells, epochs, out / name)
        else:
            found[name] = sweep_seconds(engine, list(range(cells)), epochs, out / name)
    seconds = {name: value[0] for name, value in found.items()}
    return {
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "engine_seconds_per_cell": (seconds["dask_1_worker"] - seconds["start_stop"] - seconds["in_process"]) / cells,
        "cell_seconds_worker_over_process": found["dask_1_worker"][2] / found["in_process"][2],
        "two_workers_over_one": seconds["dask_2_workers"] / seconds["dask_1_worker"],
        "two_processes_over_one": seconds["two_processes"] / seconds["in_process"],
        "same_results": all(found[way][1] == found["in_process"][1] for way in found if way != "start_stop"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        sweep_seconds(Engine(1), [0], 1, Path(tmp) / "warm")  # the data set cached, torch loaded
        for turn in range(args.rounds):
            rounds.append(one_round(args.cells, args.epochs, Path(tmp) / f"round{turn}", turn))
    median = lambda key: round(statistics.median(r[key] for r in rounds), 3)  # noqa: E731
    report = {
        "bench": "dask_cells", "cells": args.cells, "epochs": args.epochs, "rounds": args.rounds,
        "cpu_flags": cpu_flags(),
        "engine_seconds_per_cell": median("engine_seconds_per_cell"),
        "cell_seconds_worker_over_process": median("cell_seconds_worker_over_process"),
        "two_workers_over_one": median("two_workers_over_one"),
        "two_processes_over_one": median("two_processes_over_one"),  # the machine's own, no engine
        "same_results": all(r["same_results"] for r in rounds),
        "targets": {"two_workers_over_one": 0.55, "engine_seconds_per_cell": 2.0},
        "each_round": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rounds],
    }
    print_report(report, args.out)


if __name__ == "__main__":
    main()
