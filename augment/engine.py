"""Where a study's cells run: Dask (`dask.distributed`), from a laptop to a batch cluster.

A cell is pure: a worker trains and tests its classifier and returns the cell's record; the
client (this process) checks the record's identity against the one it expects and writes it,
atomically, into the output folder it holds the lock on. Output folders therefore need no
shared filesystem, and a worker that dies mid-cell leaves nothing half-written: Dask gives the
cell to another worker (at most `RETRIES` more times) and the client writes each cell once.

One code path, three kinds of cluster:
- default: a local Dask cluster of `workers` processes, one thread each (this machine's cores);
- `scheduler="tcp://HOST:PORT"`: an existing Dask cluster (`dask scheduler` and `dask worker`
  processes, or any Dask deployment);
- `batch="slurm" | "pbs" | "sge" | "lsf"`: workers started as batch jobs through dask-jobqueue,
  configured the way Dask users configure it (its YAML config), with `job` overrides.
With one worker and no cluster the cells run in this process, one after another.

What a worker cannot share with the client without a shared filesystem stays on the worker:
TensorBoard logs of its cells, and the reference classifiers of the fidelity filter, which each
worker trains once (under the output folder's path on its own disk) and then reuses.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

RETRIES = 2  # a cell whose worker died is given to another worker this many more times
# Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 (freed memory goes back to the system
# sooner). Any value of it also stops glibc from tuning when it maps memory afresh, and the CNN's
# CPU training steps took up to 1.3x as long (bench/malloc_trim.py, docs/performance.md); a cell
# holds about 1 GB. Local workers keep glibc's default; batch and existing clusters read their own Dask
# configuration on their nodes (docs/guide/cluster.md says how to do the same there).
KEEP_GLIBC_MALLOC = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
CONNECT_SECONDS = 10
REFRESH_SECONDS = 5.0  # how often a sweep asks the scheduler how many cells run now
BATCH_SYSTEMS = ("slurm", "pbs", "sge", "lsf")
JOB_OPTIONS = ("cores", "memory", "walltime", "account", "queue")


class EngineError(ValueError):
    """A cluster that cannot be reached or used, said in one line."""


@dataclass(frozen=True)
class Engine:
    workers: int = 1  # local worker processes, or batch jobs to start
    scheduler: str | None = None  # address of a running Dask scheduler
    batch: str | None = None  # a batch system whose jobs become the workers
    job: dict = field(default_factory=dict)  # cores, memory, walltime, account, queue of each batch job

    @property
    def in_process(self) -> bool:
        return self.workers <= 1 and self.scheduler is None and self.batch is None

    def describe(self) -> str:
        if self.scheduler:
            return f"the Dask cluster at {self.scheduler}"
        if self.batch:
            return f"{self.workers} {self.batch} job{'s' if self.workers > 1 else ''} (dask-jobqueue)"
        if self.in_process:
            return "this process"
        return f"a local Dask cluster of {self.workers} one-thread workers"


@contextlib.contextmanager
def client(engine: Engine):
    """A `distributed.Client` on the engine's cluster, closed (with a cluster it started) on exit.
    Starting local workers sets OMP_NUM_THREADS=1 (and more) in this process's environment for
    them to inherit; it is put back afterwards, or every later subprocess would run single-threaded."""
    environ = dict(os.environ)
    try:
        with _client(engine) as handle:
            yield handle
    finally:
        os.environ.clear()
        os.environ.update(environ)


@contextlib.contextmanager
def _client(engine: Engine):
    import dask
    from distributed import Client, LocalCluster

    # a task whose worker died is retried RETRIES more times, then reported as failed
    with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES,
                          "distributed.worker.daemon": False,  # cells may start helpers of their own
                          **KEEP_GLIBC_MALLOC}):
        if engine.scheduler:
            try:
                handle = Client(engine.scheduler, timeout=f"{CONNECT_SECONDS}s")
            except (OSError, TimeoutError) as error:
                raise EngineError(f"no Dask scheduler answers at {engine.scheduler} ({type(error).__name__}); "
                                  "check the address and that `dask scheduler` runs there") from None
            with handle:
                check_workers(handle, engine.scheduler)
                yield handle
            return
        cluster = batch_cluster(engine) if engine.batch else LocalCluster(
            n_workers=engine.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        with cluster, Client(cluster) as handle:
            if engine.batch:
                cluster.scale(jobs=engine.workers)
            else:
                check_workers(handle, "this machine")
            yield handle


def batch_cluster(engine: Engine):
    """The dask-jobqueue cluster of `engine.batch`, its jobs' resources from dask-jobqueue's
    configuration with the given overrides (`account` becomes the system's own word for it)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise EngineError("--cluster needs dask-jobqueue: pip install dask-jobqueue") from None
    classes = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}
    if engine.batch not in classes:
        raise EngineError(f"unknown batch system '{engine.batch}'; choose from {', '.join(BATCH_SYSTEMS)}")
    unknown = sorted(set(engine.job) - set(JOB_OPTIONS))
    if unknown:
        raise EngineError(f"unknown job option {unknown[0]}; choose from {', '.join(JOB_OPTIONS)}")
    settings = {k: v for k, v in engine.job.items() if v is not None}
    if "account" in settings and engine.batch != "slurm":
        settings["project"] = settings.pop("account")  # PBS, SGE and LSF call it the project
    settings.setdefault("processes", 1)  # one worker process per job, one thread: as a local worker
    return getattr(dask_jobqueue, classes[engine.batch])(**settings)


def check_workers(handle, where: str) -> None:
    """Every worker imports the project (a worker that cannot would fail every cell alike)."""
    try:
        handle.wait_for_workers(1, timeout=60)
        # the probe is a builtin run on the project's import statement: a function of the project
        # would itself fail to reach a worker that cannot import it, with a less clear error
        found = handle.run(exec, PROBE, {}, on_error="return")
    except Exception as error:  # noqa: BLE001 - anything here means the cluster cannot run cells
        raise EngineError(f"the Dask workers of {where} cannot run cells: {type(error).__name__}: {error}") from None
    broken = {address: answer for address, answer in found.items() if isinstance(answer, BaseException)}
    if broken:
        address, error = next(iter(broken.items()))
        raise EngineError(f"the Dask worker {address} cannot import the project ({type(error).__name__}: {error}); "
                          "install radiogan in the workers' environment")


# what a cell needs: the project, its classifier and data
PROBE = "import augment.sweep_config"


def run_all(engine: Engine, function: Callable, jobs: Iterable, names: Callable[[object], str],
            on_start: Callable[[str, int], None] | None = None, on_running: Callable[[int], None] | None = None,
            refresh: float = REFRESH_SECONDS) -> Iterator[tuple[object, object]]:
    """(job, function(job)) for every job, as each finishes, in this process or on the engine's
    workers; a job whose workers all died comes with the exception instead of its result.
    `on_start(dashboard address, worker threads connected now)` is called once the cluster answers;
    `on_running(jobs on a worker now)` at least every `refresh` seconds while jobs are left."""
    if engine.in_process:
        for job in jobs:
            if on_running:
                on_running(1)
            yield job, function(job)
        return
    from distributed import wait

    with client(engine) as handle:
        if on_start:
            on_start(handle.dashboard_link or "", _threads(handle))
        # Only as many cells are handed to Dask as its workers have threads, the next one as soon
        # as one finishes (and more as workers join). Given all at once, the scheduler assigns
        # them to workers straight away (each cell's name is a task group of its own, so none is
        # held back for a free thread), and work stealing moved them all onto one worker: on 2
        # workers the other stood idle while 23 cells waited behind one. This way also keeps the order
        # given, which Dask by itself does not (a study stopped part-way left unpaired cells).
        waiting = iter(jobs)
        pending: dict = {}

        def top_up() -> None:
            free = max(_threads(handle), 1) - len(pending)
            for job in itertools.islice(waiting, max(free, 0)):
                pending[handle.submit(function, job, key=names(job), pure=False)] = job

        top_up()
        while pending:
            if on_running:
                on_running(_running(handle, {future.key for future in pending}))
            try:
                finished = wait(list(pending), timeout=refresh, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                top_up()  # workers that joined since
                continue
            except Exception:  # wait() raises for cancelled futures: they finish here with their error
                finished = {future for future in pending if future.status != "pending"}
                if not finished:
                    raise
            done = [(future, pending.pop(future)) for future in finished]
            top_up()  # before the caller handles the results, so no thread waits on that
            for future, job in done:
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - the scheduler gave up on it (its workers died)
                    result = error
                yield job, result
                future.release()


def _threads(handle) -> int:
    """Worker threads connected to the scheduler now."""
    return sum(w.get("nthreads", 1) for w in handle.scheduler_info()["workers"].values())


def _running(handle, keys: set) -> int:
    """How many of `keys` run on a worker now. The scheduler's `processing` also lists tasks queued
    on a worker behind the one it runs (a worker takes a little more than its threads), so each
    worker counts for at most its threads."""
    threads = {address: w.get("nthreads", 1) for address, w in handle.scheduler_info()["workers"].items()}
    return sum(min(sum(key in keys for key in assigned), threads.get(address, 1))
               for address, assigned in handle.processing().items())


def host() -> str:
    return socket.gethostname()


def cell_device(device: str) -> str:
    """The device a cell runs on. On a local worker of a GPU machine, the worker's own GPU: local
    workers are named 0..N-1, and worker i uses GPU i mod the GPUs it sees, so each GPU runs one
    cell at a time with one worker per GPU (the default) and k with `--workers` k times the GPUs.
    Workers of another cluster see the GPUs their deployment gave them (CUDA_VISIBLE_DEVICES, as
    dask-cuda sets it), and in this process a cell uses the current GPU."""
    import torch

    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    gpu = worker_gpu(_worker_name(), torch.cuda.device_count())
    return device if gpu is None else f"cuda:{gpu}"


def worker_gpu(name, gpus: int) -> int | None:
    """The GPU of the local worker called `name` (None: not a local worker, or no GPU)."""
    return name % gpus if isinstance(name, int) and gpus > 0 else None


def _worker_name():
    try:
        from distributed import get_worker

        return get_worker().name
    except (ImportError, ValueError):  # not on a Dask worker
        return None
