"""Directories a command writes into: numbered run folders, one writer at a time, and no stale
temporary files.

The lock is an advisory `fcntl.flock` on `<dir>/.lock`, which the operating system releases
when the holding process ends in any way (even SIGKILL), so a crashed run never leaves a
stale lock behind. Readers (wgan-sample, wgan-eval, TensorBoard) take no lock.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: there the directory is not locked
    fcntl = None

LOCK_NAME = ".lock"


class DirectoryBusy(RuntimeError):
    """Another live process is writing into the directory."""


@contextlib.contextmanager
def exclusive(directory: Path, command: str) -> Iterator[Path]:
    """Hold the write lock on `directory` (created if needed) for the body of the `with`."""
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield directory
        return
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DirectoryBusy(f"{directory}: another {command} (PID {holder}) is writing here; "
                                "wait for it to finish or choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(directory)
        yield directory
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def taking_turns(lock_file: Path) -> Iterator[None]:
    """Wait until no other process holds `lock_file`, then hold it for the body of the `with`:
    processes that would compute the same file take turns, so the second finds the first's."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files of atomic writes (`.<name>.<random>.tmp`) that a killed process
    left behind; safe only while holding the directory's lock."""
    stale = [p for p in directory.rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def new_run_dir(root: Path, name: str) -> Path:
    """root/<NNNNN>-<name>, numbered one past the highest existing run."""
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    run_dir = root / f"{max(numbers, default=0) + 1:05d}-{name}"
    run_dir.mkdir()
    return run_dir


def latest_run_dir(root: Path) -> Path | None:
    """The highest-numbered run directory under root that holds a checkpoint."""
    runs = sorted(p for p in root.glob("[0-9][0-9][0-9][0-9][0-9]-*") if any((p / "checkpoints").glob("*.pt")))
    return runs[-1] if runs else None
