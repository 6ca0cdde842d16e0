import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.helpers import other_thread_count, synthetic_set, tiny_config
from wgan import checkpoint
from wgan.config import TrainConfig
from wgan.training_loop import TrainingDiverged, TrainingStopped, train
from wgan.training_state import differences

ROOT = Path(__file__).resolve().parents[1]


def final_state(run_dir: Path) -> dict:
    return checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1], checkpoint.TRAINING_STATE)


def assert_same_tensors(a, b):
    assert differences(a, b) == []


def test_differences_name_every_place_two_states_differ():
    state = {"step": 4, "generator": {"w": torch.ones(3), "b": torch.zeros(2)}, "rng": [torch.arange(3), 7]}
    same = {"step": 4, "generator": {"w": torch.ones(3), "b": torch.zeros(2)}, "rng": [torch.arange(3), 7]}
    assert differences(state, same) == []
    same["generator"]["w"][1] = 1 + 1e-7
    same["rng"][1] = 8
    assert differences(state, same) == [".generator.w", ".rng[1]"]
    assert differences(state, {**state, "step": 5}) == [".step"]
    assert differences(state, {k: v for k, v in state.items() if k != "rng"}) == [" (keys)"]
    assert differences(state, {**state, "rng": [torch.arange(3)]}) == [".rng (length)"]
    assert differences(state, {**state, "generator": {"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.int64)}}) \
        == [".generator.b"]


def test_run_writes_logs_checkpoints_and_export(tmp_path):
    cfg = tiny_config()
    export = train(cfg, synthetic_set(), tmp_path, progress=False)
    assert export == tmp_path / "generator.pt"
    lines = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 6]
    for key in ("Loss/critic", "Loss/wasserstein", "Loss/gp", "Loss/generator", "Grad/critic", "Speed/img_per_s",
                "Progress/kimg", "LR/critic"):
        assert key in lines[-1]
    assert list(tmp_path.glob("events.out.tfevents.*"))
    # keep_checkpoints=3 of the checkpoints at 2, 4, 6
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        f"training-state-{s:08d}.pt" for s in (2, 4, 6)]
    state = final_state(tmp_path)
    assert state["step"] == 6 and state["nimg"] == 6 * cfg.n_critic * cfg.batch_size
    assert not list(tmp_path.rglob("*.tmp"))


RECIPES = {
    "published": {},
    # the small-resize recipe: resize-convolutions, two-time-scale, fewer critic steps, plus a lazy penalty
    "resize-lazy": {"network": {"upsample": "nearest"}, "n_critic": 3, "optim": {"lr_d": 2e-4}, "loss": {"gp_every": 2}},
    "logistic-r1": {"loss": {"name": "logistic-r1", "gp_every": 2}},
    "resize-sqrt": {"network": {"upsample": "nearest", "intensity": "sqrt"}, "n_critic": 2, "optim": {"lr_d": 2e-4}},
    # the default recipe (small-asinh) with half widths (--width 0.5)
    "asinh-half-width": {"network": {"upsample": "nearest", "intensity": "asinh", "base_channels": 4, "max_channels": 16},
                         "n_critic": 2, "optim": {"lr_d": 2e-4}},
}


def recipe_config(name: str, **overrides) -> TrainConfig:
    cfg = tiny_config(**overrides)
    for key, value in RECIPES[name].items():
        if isinstance(value, dict):
            for field, v in value.items():
                setattr(getattr(cfg, key), field, v)
        else:
            setattr(cfg, key, value)
    return cfg


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_resume_continues_at_same_step_with_identical_result(tmp_path, recipe):
    data = synthetic_set()
    train(recipe_config(recipe, iters=6), data, tmp_path / "full", progress=False)
    train(recipe_config(recipe, iters=4), data, tmp_path / "part", progress=False)
    resume = checkpoint.list_checkpoints(tmp_path / "part")[-1]
    train(recipe_config(recipe, iters=6), data, tmp_path / "part", resume=resume, progress=False)
    assert_same_tensors(final_state(tmp_path / "full"), final_state(tmp_path / "part"))


def test_a_second_loss_runs_through_the_loop_and_progress_bar(tmp_path, capsys):
    """The loop knows only critic and generator steps: another loss logs its own stats and
    shows its own progress key; a lazy penalty's stat is averaged over the steps that computed it."""
    train(recipe_config("logistic-r1", n_critic=3), synthetic_set(), tmp_path, progress=True)
    lines = [json.loads(line) for line in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert all(k in lines[-1] for k in ("Loss/critic", "Loss/margin", "Loss/r1", "Loss/generator"))
    assert "Loss/wasserstein" not in lines[-1] and "Loss/gp" not in lines[-1]
    assert "margin=" in capsys.readouterr().err


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tests.helpers import synthetic_set, tiny_config
    from wgan.training_loop import train

    def kill(step, state):
        if step == 5:  # between the checkpoints at 4 and 6
            os.kill(os.getpid(), signal.SIGKILL)

    train(tiny_config(iters=8), synthetic_set(), Path(sys.argv[1]), callbacks=[kill], progress=False)
""")


def test_exact_resume_after_sigkill(tmp_path):
    """A run killed between checkpoints and resumed ends with the same weights as an uninterrupted one."""
    data = synthetic_set()
    train(tiny_config(iters=8), data, tmp_path / "full", progress=False)
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "killed")], cwd=ROOT,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9, proc.stderr.decode()
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "killed")][-1] == "training-state-00000004.pt"
    resume = checkpoint.list_checkpoints(tmp_path / "killed")[-1]
    train(tiny_config(iters=8), data, tmp_path / "killed", resume=resume, progress=False)
    assert_same_tensors(final_state(tmp_path / "full"), final_state(tmp_path / "killed"))
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "stats.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8], "stats written after the last checkpoint must be dropped on resume"


def test_resume_refuses_other_data(tmp_path):
    train(tiny_config(iters=2), synthetic_set(), tmp_path, progress=False)
    with pytest.raises(checkpoint.CheckpointError, match="different data, or .* earlier cache format"):
        train(tiny_config(iters=4), synthetic_set(seed=5), tmp_path, resume=checkpoint.list_checkpoints(tmp_path)[-1],
              progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def poison(step, state):
        if step == 3:
            with torch.no_grad():
                next(state.D.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(tiny_config(iters=6), synthetic_set(), tmp_path, callbacks=[poison], progress=False)
    kept = checkpoint.list_checkpoints(tmp_path)
    assert [p.name for p in kept] == ["training-state-00000002.pt"]
    state = checkpoint.load(kept[0], checkpoint.TRAINING_STATE)
    assert all(torch.isfinite(t).all() for t in state["critic"].values())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "wrong-kind", "pickle"])
def test_bad_checkpoints_give_clear_errors(tmp_path, damage):
    train(tiny_config(iters=2), synthetic_set(), tmp_path, progress=False)
    path = checkpoint.list_checkpoints(tmp_path)[-1]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "foreign":
        torch.save({"model": torch.zeros(3)}, path)
    elif damage == "wrong-kind":
        path = tmp_path / "generator.pt"
    elif damage == "pickle":
        torch.save({"format": checkpoint.TRAINING_STATE, "obj": Path("x")}, path)
    with pytest.raises(checkpoint.CheckpointError, match=str(path.name)):
        checkpoint.load(path, checkpoint.TRAINING_STATE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_checkpoint_then_stop(tmp_path, sig):
    def interrupt(step, state):
        if step == 3:
            os.kill(os.getpid(), sig)

    before = signal.getsignal(sig)
    with pytest.raises(TrainingStopped) as stopped:
        train(tiny_config(iters=8), synthetic_set(), tmp_path, callbacks=[interrupt], progress=False)
    assert stopped.value.signal == sig and stopped.value.export.is_file()
    assert checkpoint.list_checkpoints(tmp_path)[-1].name == "training-state-00000003.pt"
    assert signal.getsignal(sig) is before  # the run's handler is removed again


def test_best_metric_from_a_callback_selects_generator_best(tmp_path):
    scores = {2: 3.0, 4: 1.0, 6: 2.0}
    callback = lambda step, state: {"Metrics/score": scores[step]} if step in scores else None  # noqa: E731
    train(tiny_config(iters=6), synthetic_set(), tmp_path, callbacks=[callback], best_metric="Metrics/score",
          progress=False)
    best = checkpoint.load(tmp_path / "generator-best.pt", checkpoint.GENERATOR_EXPORT)
    assert best["step"] == 4
    assert final_state(tmp_path)["best_score"] == 1.0
    logged = [json.loads(x) for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [x["Metrics/score"] for x in logged if "Metrics/score" in x] == [3.0, 1.0, 2.0]


def test_two_runs_at_the_default_thread_count_are_identical(tmp_path):
    """Big enough that the kernels split work over threads (the tiny network does not): the
    critic's class-plane lookup once accumulated its gradient with atomics, which made two
    same-seed runs differ by about 1e-6 after a few iterations at two threads."""
    from tests.helpers import NetworkConfig

    with other_thread_count(max(2, torch.get_num_threads())):
        data = synthetic_set(n=128, size=32)
        states = []
        for name in ("a", "b"):
            cfg = tiny_config(network=NetworkConfig(resolution=32, base_channels=16, max_channels=64), batch_size=32,
                              iters=3, checkpoint_every=3)
            train(cfg, data, tmp_path / name, progress=False)
            states.append(final_state(tmp_path / name))
        assert_same_tensors(*states)
