"""Two CPU ranks with gloo train exactly as one process with the same global batch."""

import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.helpers import synthetic_set, tiny_config
from wgan import checkpoint
from wgan.training_loop import train


@pytest.fixture(autouse=True)
def one_thread():
    """Compare with one process at one thread, as each rank runs; restore the count afterwards
    (other tests compare runs made with the default count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_rank(rank: int, world: int, port: int, work) -> None:
    """What torchrun does for each process: set the rendezvous variables, run `work()`, then
    leave together. The process ends with os._exit once the group is destroyed: in the
    interpreter's own teardown gloo's background threads can still be joinable, and the process
    then aborts (SIGABRT, "terminate called without an active exception") after its work is done."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        work()
    finally:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def rank_main(rank: int, world: int, port: int, run_dir: str, overrides: dict) -> None:
    as_rank(rank, world, port, lambda: train(tiny_config(**overrides), synthetic_set(), Path(run_dir), progress=False))


def final_state(run_dir):
    return checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1], checkpoint.TRAINING_STATE)


def logged_stats(run_dir) -> list[dict]:
    """The run's stats.jsonl without the timings (which differ between any two runs)."""
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    assert lines, f"{run_dir}: nothing logged"
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("Speed/")} for line in lines]


@pytest.mark.parametrize("overrides", [{}, {"rotate": True}])
def test_two_gloo_ranks_equal_one_process(tmp_path, overrides):
    overrides = {"iters": 4, "checkpoint_every": 2, **overrides}
    mp.spawn(rank_main, args=(2, free_port(), str(tmp_path / "ddp"), overrides), nprocs=2, join=True)
    single_dir = tmp_path / "single"
    train(tiny_config(**overrides), synthetic_set(), single_dir, progress=False)
    ddp, single = final_state(tmp_path / "ddp"), final_state(single_dir)
    assert ddp["step"] == single["step"] == 4 and ddp["nimg"] == single["nimg"]
    for part in ("generator", "critic", "generator_ema"):
        for name, tensor in single[part].items():
            if tensor.is_floating_point():
                torch.testing.assert_close(ddp[part][name], tensor, rtol=1e-4, atol=1e-5, msg=f"{part}.{name}")
    # what is logged is the global batch's: the same losses, scores, penalty and gradient norms
    for logged, alone in zip(logged_stats(tmp_path / "ddp"), logged_stats(single_dir), strict=True):
        assert logged.keys() == alone.keys()
        for key, value in alone.items():
            assert logged[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    # only the main rank writes: one run directory's worth of files
    def written(run_dir):
        return sorted("events" if p.name.startswith("events.") else p.name for p in run_dir.iterdir())

    assert written(tmp_path / "ddp") == written(single_dir)


def test_resume_with_another_number_of_ranks(tmp_path):
    overrides = {"iters": 4, "checkpoint_every": 2}
    train(tiny_config(**{**overrides, "iters": 2}), synthetic_set(), tmp_path / "mixed", progress=False)
    first = checkpoint.list_checkpoints(tmp_path / "mixed")[-1]
    mp.spawn(rank_resume, args=(2, free_port(), str(tmp_path / "mixed"), str(first), overrides), nprocs=2, join=True)
    train(tiny_config(**overrides), synthetic_set(), tmp_path / "single", progress=False)
    mixed, single = final_state(tmp_path / "mixed"), final_state(tmp_path / "single")
    for name, tensor in single["generator"].items():
        if tensor.is_floating_point():
            torch.testing.assert_close(mixed["generator"][name], tensor, rtol=1e-4, atol=1e-5)


def rank_resume(rank: int, world: int, port: int, run_dir: str, resume: str, overrides: dict) -> None:
    as_rank(rank, world, port, lambda: train(tiny_config(**overrides), synthetic_set(), Path(run_dir),
                                             resume=Path(resume), progress=False))


def test_batch_that_does_not_split_over_the_ranks_is_refused(tmp_path, monkeypatch):
    from wgan import distributed

    monkeypatch.setattr(distributed, "from_environment", lambda device_type: distributed.Shard(0, 3))
    monkeypatch.setattr("wgan.training_loop.from_environment", lambda device_type: distributed.Shard(0, 3))
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        train(tiny_config(), synthetic_set(), tmp_path, progress=False)


def classifier_rank(rank: int, world: int, port: int, out: str) -> None:
    from wgan.distributed import from_environment

    def work():
        result = fit_classifier(from_environment("cpu"))
        torch.save({"weights": result.model.state_dict(), "history": result.history}, f"{out}/rank{rank}.pt")

    as_rank(rank, world, port, work)


def fit_classifier(shard):
    from classifier.engine import TrainSettings, fit
    from classifier.models import build_model

    data, valid = synthetic_set(48, 32, seed=0), synthetic_set(16, 32, seed=1)
    # batch 7 over 2 ranks: slices of 4 and 3, and a last batch of 6; class weights on
    settings = TrainSettings(epochs=2, batch_size=7, class_weighted=True, rotate=True, seed=3)
    model = build_model("cnn", 32, seed=3)
    return fit(model, data, valid, settings, torch.device("cpu"), progress=False, shard=shard)


def test_classifier_on_two_gloo_ranks_equals_one_process(tmp_path):
    from wgan.distributed import SINGLE

    mp.spawn(classifier_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    single = fit_classifier(SINGLE)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, tensor in single.model.state_dict().items():
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name]), name
        torch.testing.assert_close(ranks[0]["weights"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    # and the training loss and accuracy each epoch logs are the global batch's, as in one process
    for rank in ranks:
        for logged, alone in zip(rank["history"], single.history, strict=True):
            assert logged["train/loss"] == pytest.approx(alone["train/loss"], rel=1e-4)
            assert logged["train/accuracy"] == pytest.approx(alone["train/accuracy"])


def batch_norm_rank(rank: int, world: int, port: int, out: str) -> None:
    from wgan.distributed import GlobalBatchNorm2d, from_environment

    def work():
        from_environment("cpu")  # joins the group
        norm = GlobalBatchNorm2d(3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = norm(torch.tensor_split(bf16_batch(), world)[rank])
        torch.save({"y": y, "running_mean": norm.running_mean}, f"{out}/rank{rank}.pt")

    as_rank(rank, world, port, work)


def bf16_batch() -> torch.Tensor:
    return (torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1).bfloat16()


def test_global_batch_norm_under_bf16_autocast_normalises_like_batch_norm(tmp_path):
    """bf16 activations (--amp, the default on GPUs and native-bf16 CPUs) meet the float32
    running buffers: the statistics are taken in float32 and the output keeps the input's dtype."""
    mp.spawn(batch_norm_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    single = torch.nn.BatchNorm2d(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = single(bf16_batch())
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["y"].dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]).float(), expected.float(), rtol=2e-2, atol=2e-2)
    for r in ranks:
        assert r["running_mean"].dtype == torch.float32
        torch.testing.assert_close(r["running_mean"], single.running_mean, rtol=1e-3, atol=1e-3)


def test_wgan_train_under_torchrun_in_bf16(tmp_path):
    """The command as the README launches it, two CPU processes, bf16 autocast forced on (it
    crashed at the first batch-norm before): exit 0, one run written, printed once."""
    import shutil
    import subprocess

    script = shutil.which("wgan-train", path=str(Path(sys.executable).parent))
    assert script, "wgan-train is not installed beside this Python"
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         script, "--iters", "2", "--batch-size", "8", "--resolution", "32", "--amp", "--device", "cpu",
         "--run-dir", str(run_dir), "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("run directory:") == 1 and result.stdout.count("generator export:") == 1
    assert checkpoint.list_checkpoints(run_dir) and (run_dir / "generator.pt").is_file()
