"""Progress for terminals and batch logs: a bar on a terminal, plain timed lines elsewhere."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.wgan import train_command
from wgan.progress import LINES, Lines, progress_bar


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_lines_at_the_start_every_interval_and_at_the_end():
    clock, out = Clock(), io.StringIO()
    bar = Lines(total=100, unit="it", desc="wgan-train", every=60, stream=out, clock=clock)
    assert lines_of(out) == ["wgan-train: 0/100 it (0%)"]
    clock.now = 59.0
    bar.update(10)  # under a minute since the last line: nothing
    assert len(lines_of(out)) == 1
    clock.now = 60.0
    bar.set_postfix({"kimg": "1.3", "W": "0.250"})
    bar.update(10)
    assert lines_of(out)[-1] == "wgan-train: 20/100 it (20%), 0.333 it/s, ETA 0:04:00, kimg=1.3 W=0.250"
    clock.now = 90.0
    bar.update(80)  # the end is always shown, whatever the interval
    assert lines_of(out)[-1].startswith("wgan-train: 100/100 it (100%), 1.11 it/s")
    bar.close()
    assert len(lines_of(out)) == 3 and "\r" not in out.getvalue()


def test_an_interrupted_run_shows_where_it_stopped_and_a_resumed_one_counts_its_own_rate():
    clock, out = Clock(), io.StringIO()
    with Lines(total=10, unit="cell", desc="study", initial=4, every=600, stream=out, clock=clock) as bar:
        clock.now = 20.0
        bar.update(2)
    assert lines_of(out) == ["study: 4/10 cell (40%)", "study: 6/10 cell (60%), 0.1 cell/s, ETA 0:00:40"]


def test_iterating_counts_each_item_once_its_work_is_done():
    clock, out = Clock(), io.StringIO()
    bar = Lines(range(1, 4), total=3, unit="epoch", desc="classifier", every=0, stream=out, clock=clock)
    seen = []
    for epoch in bar:
        seen.append((epoch, bar.n))
    assert seen == [(1, 0), (2, 1), (3, 2)] and bar.n == 3
    assert lines_of(out)[-1] == "classifier: 3/3 epoch (100%)"  # no elapsed time on this clock: no rate


def test_the_kind_follows_the_switch_and_the_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not isinstance(progress_bar(total=3, unit="it", desc="x", progress=True), Lines)  # the bar
    assert isinstance(progress_bar(total=3, unit="it", desc="x", progress=LINES), Lines)  # --no-progress
    assert progress_bar(total=3, unit="it", desc="x", progress=False).disable  # silent
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(progress_bar(total=3, unit="it", desc="x", progress=True), Lines)  # a pipe, a log file
    with pytest.raises(ValueError, match="progress must be"):
        progress_bar(total=3, unit="it", desc="x", progress="bar")


def test_no_progress_on_the_command_line_still_reports_in_lines(tmp_path):
    result = CliRunner().invoke(train_command, ["--resolution", "32", "--iters", "3", "--batch-size", "16", "--n-critic",
                                                "1", "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "wgan-train: 0/3 it (0%)" in result.output and "wgan-train: 3/3 it (100%)" in result.output
    assert "\r" not in result.output


def test_a_command_writing_into_a_pipe_prints_lines_not_frames(tmp_path):
    command = Path(sys.executable).with_name("wgan-sample")
    done = subprocess.run([str(command), "--n", "300", "--checkpoint", "first-cv0", "--out", str(tmp_path / "s"),
                           "--batch-size", "100"], capture_output=True, text=True, env={**os.environ, "RADIOGAN_PROGRESS_SECONDS": "0"})
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stderr.splitlines() if line.startswith("wgan-sample: ")]
    assert [line.split(",")[0] for line in shown] == ["wgan-sample: 0/300 img (0%)", "wgan-sample: 100/300 img (33%)",
                                                      "wgan-sample: 200/300 img (67%)", "wgan-sample: 300/300 img (100%)"]
    assert "\r" not in done.stderr + done.stdout


@pytest.mark.parametrize("progress", [False, True])
def test_bars_start_no_thread_a_forked_process_could_inherit_holding_a_lock(progress, monkeypatch):
    """tqdm's monitor thread takes tqdm's lock now and then; a process forked at that moment (a
    worker pool, mutmut's children) waited forever at its first bar. No bar starts it."""
    import threading

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the tqdm bar itself when progress is on
    with progress_bar(range(3), unit="it", desc="test", progress=progress) as bar:
        list(bar)
    assert not [t for t in threading.enumerate() if t.name == "tqdm_monitor"]
