"""Cells on Dask with real Dask processes: a scheduler and workers started as separate processes
(as on separate machines), a worker killed mid-cell, an address that does not answer, the batch
job script, and local workers that end with the command that started them."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from augment.engine import Engine, EngineError, batch_cluster
from commands.augment import augment_eval_command
from tests.test_augment_eval import make_generator

ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict:
    """This test session's environment (its cache and registry) for the processes a test starts."""
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


def sweep(out: Path, generator: str, *extra: str):
    return CliRunner().invoke(augment_eval_command, [
        "--ratio", "1", "--folds", "0", "--seeds", "0", "--epochs", "3", "--no-baselines", "--checkpoint", generator,
        "--resolution", "32", "--out", str(out), "--no-progress", *extra])


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def cells_of(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "cells").glob("*/fold0-seed0.json")}


def _start(module: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, *args], env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@contextlib.contextmanager
def dask_cluster(folder: Path, *workers: list[str]):
    """A `dask scheduler` and a one-thread `dask worker` per list of extra options, separate
    processes (as on separate machines), killed on exit; yields (address, [scheduler, *workers])."""
    address_file = folder / "scheduler.json"
    started = [_start("distributed.cli.dask_scheduler", "--scheduler-file", str(address_file), "--port", "0",
                      "--dashboard-address", ":0")]
    try:
        wait_for(address_file.exists, 60, "the scheduler")
        address = json.loads(address_file.read_text())["address"]
        for extra in workers:  # no nanny: a killed worker stays dead, as a lost machine would
            started.append(_start("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny", *extra))
        yield address, started
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and process groups")
def test_a_sweep_on_a_dask_cluster_survives_a_worker_killed_mid_cell(generator, tmp_path):
    # cells long enough (about 10 s each on an idle 2-core machine) that neither ends while the
    # other worker is still starting its own: with 3 epochs one cell once finished first
    alone = sweep(tmp_path / "alone", generator, "--workers", "1", "--epochs", "40")
    assert alone.exit_code == 0, alone.output
    with dask_cluster(tmp_path, ["--name", "a"], ["--name", "b"]) as (address, started):
        out = tmp_path / "cluster"
        runner = subprocess.Popen([sys.executable, "-c", "from commands.augment import augment_eval_command as c; c()",
                                   "--ratio", "1", "--folds", "0", "--seeds", "0", "--epochs", "40", "--no-baselines",
                                   "--checkpoint", generator, "--resolution", "32", "--out", str(out), "--no-progress",
                                   "--scheduler", address], env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        # both cells running (each logs from its first step), none finished: kill worker a
        logs = [out / "tensorboard" / arm / "fold0-seed0" for arm in ("r=0", "r=1")]
        wait_for(lambda: all(p.is_dir() for p in logs), 180, "both cells to start")
        assert not cells_of(out), "a cell finished before the kill: nothing would test the retry"
        os.killpg(started[1].pid, signal.SIGKILL)
        output, _ = runner.communicate(timeout=300)
        assert runner.returncode == 0, output
        assert f"cells run on the Dask cluster at {address}" in output
        assert "CPU-minutes, divided among the cluster's workers" in output  # its size is not this process's
    got, want = cells_of(out), cells_of(tmp_path / "alone")
    assert sorted(got) == sorted(want) == ["r=0", "r=1"] and not (out / "errors.json").exists()
    # the compute line sums what both workers spent (one host here)
    assert "Compute of the finished cells, summed over the workers that ran them: cpu: 2 cells on 1 host" in (
        out / "report.md").read_text()
    for arm in want:  # the same numbers and identity as in one process, each cell written once
        assert got[arm]["identity"] == want[arm]["identity"]
        assert got[arm]["test"]["confusion_matrix"] == want[arm]["test"]["confusion_matrix"]


# Loaded into a worker at its start (dask worker --preload): the project cannot be imported there,
# as in a worker environment where radiogan was never installed.
NO_PROJECT = """
import sys

class NoProject:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("augment", "classifier", "commands", "wgan"):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoProject())
"""


def test_a_worker_that_cannot_import_the_project_stops_the_sweep_in_one_line(generator, tmp_path):
    blocker = tmp_path / "no_project.py"
    blocker.write_text(NO_PROJECT)
    with dask_cluster(tmp_path, ["--preload", str(blocker)]) as (address, _):
        result = sweep(tmp_path / "out", generator, "--scheduler", address)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "cannot import the project (ModuleNotFoundError: No module named 'augment" in result.output
    assert "install radiogan in the workers' environment" in result.output
    assert not cells_of(tmp_path / "out")


def test_a_scheduler_that_does_not_answer_is_one_line_and_writes_nothing(generator, tmp_path):
    result = sweep(tmp_path / "out", generator, "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no Dask scheduler answers at tcp://127.0.0.1:9" in result.output
    assert not cells_of(tmp_path / "out")


def test_the_engine_options_are_checked_before_anything_runs(generator, tmp_path):
    both = sweep(tmp_path / "out", generator, "--scheduler", "tcp://127.0.0.1:9", "--cluster", "slurm")
    assert both.exit_code == 1 and "--scheduler and --cluster both say where the workers are" in both.output
    stray = sweep(tmp_path / "out", generator, "--job-memory", "4GB")
    assert stray.exit_code == 1 and "the --job-* options are for the batch jobs of --cluster" in stray.output
    with pytest.raises(EngineError, match="unknown job option gpus"):
        batch_cluster(Engine(batch="slurm", job={"gpus": 1}))


def test_the_slurm_job_script_carries_the_requested_resources():
    job = {"cores": 2, "memory": "4GB", "walltime": "01:30:00", "account": "astro42", "queue": "short"}
    with batch_cluster(Engine(workers=3, batch="slurm", job=job)) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH -A astro42", "#SBATCH -p short", "#SBATCH -t 01:30:00", "#SBATCH --cpus-per-task=2",
                 "#SBATCH --mem=4G"):
        assert line in script, script
    assert "distributed.cli.dask_worker" in script or "dask worker" in script or "dask-worker" in script


def test_local_workers_leave_this_process_environment_as_it_was():
    """Starting local Dask workers sets OMP_NUM_THREADS=1 in the client's environment for them;
    left there, every later subprocess of the command (and of a test session) ran single-threaded."""
    from augment.engine import run_all

    before = dict(os.environ)
    done = sorted(result for _, result in run_all(Engine(workers=2), abs, [-1, -2], names=str))
    assert done == [1, 2] and dict(os.environ) == before


def test_local_workers_keep_glibcs_memory_tuning(monkeypatch):
    """Dask gives its workers MALLOC_TRIM_THRESHOLD_=65536, with which the CNN's CPU training steps
    took up to 1.3x as long (bench/malloc_trim.py); local workers start without it (one thread each)."""
    from augment.engine import run_all

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    found = dict(run_all(Engine(workers=2), os.getenv, ["MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS"], names=str))
    assert found == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}


def _note_start(job) -> int:
    folder, index = job
    with open(Path(folder) / "started", "a") as f:
        f.write(f"{index}\n")
    time.sleep(0.2)  # the cell's work: the next cells wait for a free worker
    return index


def test_cells_start_in_the_order_given_so_a_stopped_study_leaves_whole_folds(tmp_path):
    """run_sweep gives the cells seed by seed, fold by fold; the workers must take them in that
    order (Dask by itself does not keep the submission order of tasks of equal priority: with
    names like the cells' it ran them far out of order)."""
    from augment.engine import run_all

    done = list(run_all(Engine(workers=2), _note_start, [(str(tmp_path), i) for i in range(16)],
                        names=lambda job: f"cell {job[1]}"))
    started = [int(line) for line in (tmp_path / "started").read_text().split()]
    assert sorted(result for _, result in done) == list(range(16))
    assert all(index <= position + 1 for position, index in enumerate(started)), started  # two at a time


def _held(job) -> int:
    """A cell that runs until the test releases it (a file appears); -1 if never released."""
    folder, index = job
    deadline = time.monotonic() + 60
    while not Path(folder, "release").exists():
        if time.monotonic() > deadline:
            return -1
        time.sleep(0.05)
    return index


def test_the_running_cells_are_counted_while_they_run(tmp_path):
    """What the progress bar shows beside the cells done: how many run on a worker now."""
    from augment.engine import run_all

    seen = []

    def on_running(n: int) -> None:
        seen.append(n)
        if n == 2:  # both workers busy: let the cells finish
            (tmp_path / "release").touch()

    done = list(run_all(Engine(workers=2), _held, [(str(tmp_path), i) for i in range(3)], names=lambda job: f"cell {job[1]}",
                        on_running=on_running, refresh=0.1))
    assert sorted(result for _, result in done) == [0, 1, 2]
    assert 2 in seen and max(seen) == 2 and min(seen) >= 0
    in_process = []
    assert [r for _, r in run_all(Engine(), abs, [-1, -2], names=str, on_running=in_process.append)] == [1, 2]
    assert in_process == [1, 1]


def _assigned_then_held(job) -> int:
    """A held cell (as `_held`) that first notes the most cells the scheduler has handed any one
    worker now, running or queued behind the running one."""
    from distributed import get_client

    folder, index = job
    most = max(len(keys) for keys in get_client().processing().values())
    Path(folder, f"assigned-{index}").write_text(str(most))
    return _held(job)


def test_no_cell_waits_behind_another_while_a_worker_is_free(tmp_path):
    """Each one-thread worker is handed one cell at a time. Given every cell at once, the
    scheduler queued them on the workers and work stealing moved them all onto one: on 2 workers
    the other stood idle while 23 cells waited behind one (study d4-1)."""
    from augment.engine import run_all

    def on_running(n: int) -> None:
        if n == 2:
            (tmp_path / "release").touch()

    jobs = [(str(tmp_path), i) for i in range(6)]
    done = list(run_all(Engine(workers=2), _assigned_then_held, jobs, names=lambda job: f"cell {job[1]}",
                        on_running=on_running, refresh=0.1))
    assert sorted(result for _, result in done) == list(range(6))
    assert [int((tmp_path / f"assigned-{i}").read_text()) for i in range(6)] == [1] * 6


def test_local_workers_share_the_gpus_evenly_each_its_own():
    """Each local worker runs its cells on its own GPU (worker i on GPU i mod the GPUs): one worker
    per GPU by default, two per GPU with twice the workers; never two workers on one GPU while
    another GPU idles. The names are those of real local workers."""
    from augment.engine import _worker_name, client, worker_gpu

    with client(Engine(workers=4)) as handle:  # a task on each worker asks its name, as a cell does
        handle.wait_for_workers(4, timeout=60)
        names = handle.gather([handle.submit(_worker_name, workers=[address], pure=False)
                               for address in handle.scheduler_info()["workers"]])
    assert sorted(worker_gpu(name, 2) for name in names) == [0, 0, 1, 1]
    assert sorted(worker_gpu(name, 4) for name in names) == [0, 1, 2, 3]
    assert worker_gpu(None, 2) is None and worker_gpu("tcp://10.0.0.5:4000", 2) is None and worker_gpu(1, 0) is None


# A parent that runs two slow tasks on a local Dask cluster of 2 workers; each task leaves its
# worker's pid in the folder given, so the test knows them without private fields.
SCRIPT = """
import os, sys, time
from pathlib import Path
from augment.engine import Engine, run_all

def cell(_):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(120)

if __name__ == "__main__":
    for _ in run_all(Engine(workers=2), cell, range(2), names=str):
        pass
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_local_workers_exit_when_the_sweep_is_killed(tmp_path, signum):
    script, pids = tmp_path / "sweep.py", tmp_path / "pids"
    script.write_text(SCRIPT)
    pids.mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], env=environment(), stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        wait_for(lambda: len(list(pids.iterdir())) == 2, 120, "both workers to start a task")
        workers = [int(p.name) for p in pids.iterdir()]
        parent.send_signal(signum)  # no cleanup runs in the parent: as with `kill` or a time limit
        parent.wait(timeout=30)
        wait_for(lambda: not any(_alive(pid) for pid in workers), 30, "the workers to exit")
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_record_of_another_identity_or_other_test_images_is_refused():
    """What a worker computed from other inputs at the same paths (another generator file, another
    data file on its machine) is not written."""
    from augment.sweep import record_problem

    identity = {"arm": "r=1", "generator_sha256": "ab" * 32, "data": {"source": "first"}}
    record = {"identity": identity, "data_fingerprints": {"test": "first:test"}}
    assert record_problem(record, identity, "first:test") == ""
    other_generator = {**record, "identity": {**identity, "generator_sha256": "cd" * 32}}
    assert record_problem(other_generator, identity, "first:test").startswith("generator_sha256 = 'cdcd")
    other_images = {**record, "data_fingerprints": {"test": "mine:test"}}
    assert record_problem(other_images, identity, "first:test") == "tested on images mine:test, this process reads first:test"
