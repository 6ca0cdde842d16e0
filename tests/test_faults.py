"""Fault injection: what a run does when it is killed at a random moment, when the disk fills up
during a checkpoint write, and when a sweep dies in the middle of a cell. (Two writers, damaged
checkpoints and damaged caches have their own modules: test_run_directories,
test_checkpoint_integrity, test_data_cache.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from commands.wgan import train_command
from wgan import checkpoint
from wgan.data.schema import write_group

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """A small HDF5 set in the FIRST schema: 16 px blobs, four classes."""
    path = tmp_path_factory.mktemp("faults") / "set.h5"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16]
    with h5py.File(path, "w") as h5:
        for i in range(32):
            cy, cx = rng.uniform(5, 11, 2)
            image = np.clip(255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (1 + i % 4)), 0, 255)
            write_group(h5, i, image.astype(np.uint8), i % 4, "synthetic")
    return path


def train_args(data_file: Path, run_dir: Path, iters: int) -> list[str]:
    return ["--data", str(data_file), "--crop", "16", "--resolution", "16", "--batch-size", "8", "--n-critic", "2",
            "--iters", str(iters), "--checkpoint-every", "1", "--keep", "2", "--log-every", "1",
            "--sample-every", "1000", "--run-dir", str(run_dir), "--no-progress", "--no-amp", "--seed", "3"]


def final(run_dir: Path) -> dict:
    payload = checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1], checkpoint.TRAINING_STATE)
    return {k: v for k, v in payload.items() if k != "config"}


def same(a, b) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


ITERS = 100  # long enough that a kill up to 0.6 s after the first checkpoint lands mid-run


@pytest.fixture(scope="module")
def uninterrupted(data_file, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("full") / "run"
    result = CliRunner().invoke(train_command, train_args(data_file, run_dir, ITERS))
    assert result.exit_code == 0, result.output
    return final(run_dir)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_moment_then_resume_auto_is_bit_exact(data_file, uninterrupted, tmp_path, seed):
    """Checkpoints are written every iteration, so a random kill often lands inside a write."""
    run_dir = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "from commands.wgan import train_command as c; c()",
                              *train_args(data_file, run_dir, ITERS)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.list_checkpoints(run_dir) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run ended before the kill"
    killed_at = checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1], checkpoint.TRAINING_STATE)["step"]
    assert killed_at < ITERS
    result = CliRunner().invoke(train_command, [*train_args(data_file, run_dir, ITERS), "--resume", "auto"])
    assert result.exit_code == 0, result.output
    assert same(final(run_dir), uninterrupted)
    assert not list(run_dir.rglob("*.tmp"))


def test_full_disk_during_a_checkpoint_write_keeps_the_previous_one(data_file, tmp_path, monkeypatch):
    import torch

    calls = {"n": 0}
    real_save = torch.save

    def save_until_full(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # state 1 and its export written; the disk fills during state 2
            Path(path).write_bytes(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_full)
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(train_command, train_args(data_file, run_dir, 4))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "training-state-00000002.pt: could not be written (No space left on device)" in result.output
    assert [p.name for p in checkpoint.list_checkpoints(run_dir)] == ["training-state-00000001.pt"]
    checkpoint.load(checkpoint.list_checkpoints(run_dir)[0], checkpoint.TRAINING_STATE)  # intact
    assert not list(run_dir.rglob("*.tmp"))


SWEEP = ["--ratio", "0", "--folds", "0", "--epochs", "3", "--workers", "1", "--resolution", "32", "--no-dihedral",
         "--no-progress"]  # four cells: real only and its three baselines


def test_a_sweep_killed_mid_cell_recomputes_only_that_cell(tmp_path, session_cache):
    out = tmp_path / "sweep"
    child = subprocess.Popen([sys.executable, "-c", "from commands.augment import augment_eval_command as c; c()",
                              *SWEEP, "--out", str(out)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "cells" / "r=0" / "fold0-seed0.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)  # at once: the next cell has just begun
    child.wait()
    done = sorted(p for p in (out / "cells").rglob("*.json"))
    assert first in done and len(done) < 4, "the kill should land before the sweep ends"
    stamps = {p: p.stat().st_mtime_ns for p in done}
    from commands.augment import augment_eval_command

    result = CliRunner().invoke(augment_eval_command, [*SWEEP, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finished cells were not recomputed
    assert len(list((out / "cells").rglob("*.json"))) == 4
    assert not list(out.rglob("*.tmp"))
