"""A sweep's worker processes end with the command that started them, even when it is killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A parent that starts a sweep's pool of 2 workers, each busy for 2 minutes (as a cell would be);
# each worker leaves its pid in the folder given, so the test knows them without private fields.
SCRIPT = """
import os, sys, time
from pathlib import Path
from augment.workers import worker_pool

def cell(_):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(120)

if __name__ == "__main__":
    pool = worker_pool(2)
    pool.map_async(cell, range(2))
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_the_sweep_is_killed(tmp_path, signum):
    script, pids = tmp_path / "sweep.py", tmp_path / "pids"
    script.write_text(SCRIPT)
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen([sys.executable, str(script), str(pids)], env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2, "the pool's workers did not start"
        parent.send_signal(signum)  # no cleanup runs in the parent: as with `kill` or a time limit
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its sweep"
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
