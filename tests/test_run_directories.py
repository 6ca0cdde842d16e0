"""Run directories are never shared by accident: one writer, no silent restarts, exit codes a
scheduler understands, no stale temporary files."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands import wgan_train as launch
from commands.wgan import train_command
from tests.helpers import other_thread_count
from wgan.training_loop import TrainingStopped
from wgan.workdir import DirectoryBusy, exclusive, taking_turns

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--resolution", 32, "--batch-size", 16, "--n-critic", 1, "--iters", 2, "--checkpoint-every", 1,
        "--no-progress", "--no-amp"]


def invoke(args):
    return CliRunner().invoke(train_command, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "run"
    result = invoke([*TINY, "--run-dir", path])
    assert result.exit_code == 0, result.output
    return path


def test_fresh_run_into_a_directory_that_holds_a_run_is_refused(run_dir):
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    result = invoke([*TINY, "--run-dir", run_dir, "--lr-g", 0.5])
    assert result.exit_code == 2 and "already holds a run" in result.output and "--resume auto" in result.output
    assert "Traceback" not in result.output
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("where", ["missing", "empty-root"])
def test_resume_auto_without_a_run_says_so(tmp_path, where):
    args = ["--run-dir", tmp_path / "typo"] if where == "missing" else ["--runs-root", tmp_path / "runs"]
    result = invoke([*TINY, "--resume", "auto", *args])
    assert result.exit_code == 2 and ("holds no run" in result.output or "no run with a checkpoint" in result.output)
    assert not (tmp_path / "typo").exists() and not (tmp_path / "runs").exists()


def test_resume_if_any_starts_then_continues(tmp_path):
    run = tmp_path / "job"
    first = invoke([*TINY, "--resume", "if-any", "--run-dir", run])
    assert first.exit_code == 0, first.output
    second = invoke([*TINY, "--resume", "if-any", "--run-dir", run, "--iters", 3])
    assert second.exit_code == 0 and "resuming from" in second.output
    steps = [json.loads(x)["step"] for x in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 3]


def test_second_writer_is_refused_naming_the_holder(run_dir):
    with exclusive(run_dir, "wgan-train"):
        result = invoke([*TINY, "--resume", "auto", "--run-dir", run_dir, "--iters", 3])
    assert result.exit_code == 1 and f"(PID {os.getpid()})" in result.output and str(run_dir) in result.output
    assert "Traceback" not in result.output


def test_the_holder_named_is_the_one_holding_the_lock_not_an_earlier_one(tmp_path):
    from wgan.workdir import LOCK_NAME

    (tmp_path / LOCK_NAME).write_text("4194303999\n")  # left by an earlier holder with a longer PID
    with exclusive(tmp_path, "first"):
        with pytest.raises(DirectoryBusy) as busy, exclusive(tmp_path, "second"):
            pass
    assert f"(PID {os.getpid()})" in str(busy.value)


LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from wgan.workdir import exclusive
    with exclusive(Path(sys.argv[1]), "test"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_lock_of_a_killed_process_is_released(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == b"locked"
    with pytest.raises(DirectoryBusy, match=f"PID {holder.pid}"), exclusive(tmp_path, "test"):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with exclusive(tmp_path, "test"):  # no stale lock
        pass


def test_writers_of_the_same_file_take_turns(tmp_path):
    import threading

    order = []

    def second():
        with taking_turns(tmp_path / ".x.lock"):
            order.append("second")

    with taking_turns(tmp_path / ".x.lock"):
        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # blocked while the first holds the lock
        order.append("first")
    waiting.join(10)
    assert order == ["first", "second"]


def test_stale_temporary_files_are_removed_on_resume(run_dir):
    stale = run_dir / "checkpoints" / ".training-state-00000009.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    result = invoke([*TINY, "--resume", "auto", "--run-dir", run_dir, "--iters", 3])
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_exits_128_plus_signal(tmp_path, monkeypatch, sig, code):
    def stopped(*args, **kwargs):
        raise TrainingStopped(sig, tmp_path / "generator.pt")

    monkeypatch.setattr("wgan.training_loop.train", stopped)
    result = invoke([*TINY, "--run-dir", tmp_path / "run"])
    assert result.exit_code == code
    assert launch.holds_run(tmp_path / "run")  # its config was written before training began


@pytest.mark.parametrize("command", ["augment-eval", "classifier-train", "augment-cml"])
def test_every_writing_command_refuses_a_second_writer(tmp_path, command):
    from commands.augment import augment_eval_command, cml_command
    from commands.classifier import classifier_train_command

    out = tmp_path / "out"
    args = {
        "augment-eval": (augment_eval_command, ["--ratio", "0", "--folds", "0", "--epochs", "1", "--workers", "1",
                                                "--no-baselines", "--resolution", "32", "--no-progress"]),
        "classifier-train": (classifier_train_command, ["--split", "cv", "--folds", "0", "--epochs", "1",
                                                        "--resolution", "32", "--no-progress"]),
        "augment-cml": (cml_command, ["--checkpoint", ROOT / "checkpoints" / "generator.pt", "--quick"]),
    }
    cli, extra = args[command]
    with exclusive(out, command):
        result = CliRunner().invoke(cli, [str(a) for a in [*extra, "--out", out]])
    assert result.exit_code == 1 and f"another {command} (PID {os.getpid()})" in result.output
    assert "Traceback" not in result.output


def test_resume_at_another_thread_count_warns(run_dir):
    import torch

    saved = json.loads((run_dir / "config.json").read_text())["threads"]
    assert saved == torch.get_num_threads()
    with other_thread_count(2 if saved == 1 else 1):
        result = invoke([*TINY, "--resume", "auto", "--run-dir", run_dir, "--iters", 5])
    assert result.exit_code == 0, result.output
    assert f"started with {saved} CPU threads" in result.output and f"OMP_NUM_THREADS={saved}" in result.output


def test_a_bf16_run_resumed_where_bf16_is_emulated_continues_in_float32(run_dir, monkeypatch):
    config = json.loads((run_dir / "config.json").read_text())
    from wgan.config import TrainConfig

    cfg = TrainConfig.from_json(json.dumps({**config, "amp": True}))
    import wgan.device

    for module in (launch, wgan.device):
        monkeypatch.setattr(module, "native_bf16", lambda device: False)
    assert "continues in float32" in launch.amp_for_resume(cfg, given=set()) and cfg.amp is False
    cfg.amp = True
    # --amp given: kept, and the notice says what it costs
    assert "only emulated" in launch.amp_for_resume(cfg, given={"amp"}) and cfg.amp is True
    for module in (launch, wgan.device):
        monkeypatch.setattr(module, "native_bf16", lambda device: True)
    assert launch.amp_for_resume(cfg, given={"amp"}) is None and cfg.amp is True
    assert launch.amp_for_resume(cfg, given=set()) is None and cfg.amp is True
