"""Worker processes that never outlive the command that started them.

A sweep's cells run in a spawn pool. Ctrl-C reaches the pool's `terminate()`, but SIGTERM or
SIGKILL (`kill`, a scheduler's time limit) ends the parent without any cleanup, and its workers
would go on training their cells for hours: they hold no lock on the output folder, so a rerun
into it trains the same cells beside them, and the machine runs at a fraction of its speed with
nothing to say why. Each worker therefore watches its parent and exits the moment it is gone (a
cell writes its result last and atomically, so a worker killed mid-cell leaves nothing behind).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

POLL_SECONDS = 0.5


def worker_pool(workers: int) -> multiprocessing.pool.Pool:
    """A spawn pool of `workers` processes that exit when this process dies, however it dies."""
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_watch_parent, initargs=(os.getpid(),))


def _watch_parent(parent: int) -> None:
    """Pool initializer: a daemon thread that ends the worker once it has been reparented (its
    parent died). Portable, unlike Linux's PR_SET_PDEATHSIG, and it needs no signal handler."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(1)  # no cleanup to run: the cell in progress had written nothing yet

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
