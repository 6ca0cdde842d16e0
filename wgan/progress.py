"""Progress a person at a terminal and a batch job's log can both read.

On a terminal: a tqdm bar. Anywhere else (a pipe, a Slurm log), or with --no-progress: one plain
line at the start, then at most one every EVERY_S seconds, and one at the end, e.g.

    wgan-train: 1500/2500 it (60%), 0.52 it/s, ETA 0:32:03, kimg=192.0 W=1.234

never carriage-return frames. Library code passes `progress`: True (a bar on a terminal, else
lines), LINES (lines even on a terminal: the commands' --no-progress) or False (silent: a cell
inside a sweep, whose sweep reports for it).
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm

# No monitor thread: tqdm starts one with the first bar (even a disabled one), and it takes tqdm's
# lock now and then; a process forked while it holds it (a worker pool, a mutation-testing run)
# waits forever for that lock at its own first bar. The monitor only tunes a bar's refresh rate.
tqdm.monitor_interval = 0

LINES = "lines"
# seconds between lines; RADIOGAN_PROGRESS_SECONDS sets it (e.g. 600 for a long job's log)
EVERY_S = float(os.environ.get("RADIOGAN_PROGRESS_SECONDS", "60"))


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, unit: str, desc: str,
                 progress: bool | str = True, initial: int = 0, leave: bool = True):
    """A tqdm bar, plain lines or nothing (see the module's docstring); all take update(n),
    set_postfix(...), write(message), close() and iterate over `iterable` when one is given."""
    total = len(iterable) if total is None and iterable is not None else total
    if progress is False:
        return tqdm(iterable, total=total, initial=initial, disable=True)
    if progress is True and sys.stderr.isatty():
        return tqdm(iterable, total=total, initial=initial, unit=unit, desc=desc, leave=leave, dynamic_ncols=True)
    if progress not in (True, LINES):
        raise ValueError(f"progress must be True, False or {LINES!r}, not {progress!r}")
    return Lines(iterable, total=total, unit=unit, desc=desc, initial=initial)


class Lines:
    """Progress as whole lines on a stream: at the start, every `every` seconds, at the end."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None, unit: str, desc: str, initial: int = 0,
                 every: float | None = None, stream: TextIO | None = None, clock=time.monotonic):
        self.iterable, self.total, self.unit, self.desc = iterable, total, unit, desc
        self.n = self.start_n = initial
        self.every = EVERY_S if every is None else every
        self.stream = stream or sys.stderr
        self.clock = clock
        self.started = self.last = clock()
        self.postfix = ""
        self.shown_n: int | None = None
        self.closed = False
        self._emit()

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.every or (self.total is not None and self.n >= self.total):
            self.last = now
            self._emit()

    def set_postfix(self, ordered_dict: dict | None = None, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def write(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.closed and self.shown_n != self.n:
            self._emit()  # where it stopped: the end, or an interruption
        self.closed = True

    def line(self) -> str:
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        if self.total:
            done += f" {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            done += f" {self.unit}"
        parts = [done]
        elapsed = self.clock() - self.started
        if self.n > self.start_n and elapsed > 0:
            rate = (self.n - self.start_n) / elapsed
            parts.append(f"{rate:.3g} {self.unit}/s")
            if self.total and self.n < self.total:
                parts.append(f"ETA {datetime.timedelta(seconds=round((self.total - self.n) / rate))}")
        line = f"{self.desc}: {', '.join(parts)}"
        return f"{line}, {self.postfix}" if self.postfix else line

    def _emit(self) -> None:
        self.shown_n = self.n
        self.write(self.line())
