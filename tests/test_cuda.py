"""The CUDA path: training and resume bit for bit on the GPU, states and generators that move
between the GPU and the CPU, classifier cells and quality features on the GPU, torchrun with NCCL.

Marked `cuda`: they run wherever a GPU is present (bench/gpu_check.py runs them first) and skip
elsewhere. RADIOGAN_TEST_DEVICE=cpu runs them on the CPU, to check this file itself on a machine
without a GPU (torchrun then uses gloo)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from classifier.engine import TrainSettings, evaluate, fit
from classifier.features import extract_features
from classifier.models import build_model
from tests.helpers import synthetic_set, tiny_config
from tests.test_distributed import free_port
from tests.test_training import assert_same_tensors, final_state, recipe_config
from wgan import checkpoint
from wgan.device import native_bf16, select_device
from wgan.sampling import generate, load_generator, plan
from wgan.training_loop import train

pytestmark = pytest.mark.cuda
WANTED = os.environ.get("RADIOGAN_TEST_DEVICE", "cuda")


@pytest.fixture
def device() -> torch.device:
    try:
        return select_device(WANTED)
    except ValueError:
        pytest.skip(f"no {WANTED} device here (RADIOGAN_TEST_DEVICE=cpu runs these tests on the CPU)")


def on(device: torch.device, recipe: str = "published", **overrides):
    """A tiny run on `device`, in bf16 where the device has it natively (as wgan-train defaults)."""
    return recipe_config(recipe, device=str(device), amp=native_bf16(device), **overrides)


@pytest.mark.parametrize("recipe", ["published", "asinh-half-width"])
def test_resume_on_the_device_is_bit_exact(tmp_path, device, recipe):
    data = synthetic_set()
    train(on(device, recipe, iters=6), data, tmp_path / "full", progress=False)
    train(on(device, recipe, iters=4), data, tmp_path / "part", progress=False)
    resume = checkpoint.list_checkpoints(tmp_path / "part")[-1]
    train(on(device, recipe, iters=6), data, tmp_path / "part", resume=resume, progress=False)
    assert_same_tensors(final_state(tmp_path / "full"), final_state(tmp_path / "part"))


def test_a_state_written_on_the_device_resumes_on_the_cpu_and_back(tmp_path, device):
    """Checkpoints hold CPU tensors, so a run moves between a GPU node and a laptop."""
    data = synthetic_set()
    train(on(device, iters=2), data, tmp_path, progress=False)
    train(tiny_config(iters=4, device="cpu"), data, tmp_path, resume=checkpoint.list_checkpoints(tmp_path)[-1],
          progress=False)
    train(on(device, iters=6), data, tmp_path, resume=checkpoint.list_checkpoints(tmp_path)[-1], progress=False)
    state = final_state(tmp_path)
    assert state["step"] == 6
    weights = [t for t in state["generator"].values() if t.is_floating_point()]
    assert all(t.device.type == "cpu" and torch.isfinite(t).all() for t in weights)


def test_a_generator_samples_the_same_images_on_the_device_as_on_the_cpu(tmp_path, device):
    """Per-image noise is drawn on the CPU from the image's seed, so only float rounding differs."""
    train(tiny_config(iters=2), synthetic_set(), tmp_path, progress=False)
    labels, seeds = plan(12, [0, 1, 2, 3], seed=5)
    images = {}
    for where in ("cpu", device):
        gen = load_generator(tmp_path / "generator.pt", where)
        images[str(where)] = torch.cat([batch for batch, _, _ in generate(gen.model, labels, seeds, batch_size=5)])
    torch.testing.assert_close(images[str(device)], images["cpu"], rtol=1e-4, atol=1e-5)


def test_a_classifier_trains_on_the_device_reproducibly(device):
    train_set, valid = synthetic_set(64, 32, seed=0), synthetic_set(32, 32, seed=1)
    settings = TrainSettings(epochs=2, batch_size=16, seed=3, amp=native_bf16(device))
    runs = [fit(build_model("cnn", 32, seed=3), train_set, valid, settings, device, progress=False) for _ in range(2)]
    assert_same_tensors(*(run.model.state_dict() for run in runs))
    report = evaluate(runs[0].model, valid, device, settings.amp)
    assert 0 <= report["accuracy"] <= 1 and len(report["predicted"]) == len(valid)


def test_quality_features_on_the_device_match_the_cpu(device):
    """FID, KID and precision/recall read these features: a GPU may not shift a generator's scores."""
    model = build_model("cnn", 32, seed=0).eval()
    images = synthetic_set(40, 32, seed=2).images
    cpu = extract_features(model, images, batch_size=16)
    there = extract_features(model.to(device), images, batch_size=16)
    np.testing.assert_allclose(there, cpu, rtol=1e-4, atol=1e-5)


def test_wgan_train_under_torchrun_on_the_device(tmp_path, device):
    """One process per GPU as the README launches it: NCCL on CUDA (gloo on the CPU), bf16 where native."""
    script = shutil.which("wgan-train", path=str(Path(sys.executable).parent))
    assert script, "wgan-train is not installed beside this Python"
    run_dir = tmp_path / "run"
    amp = "--amp" if native_bf16(device) else "--no-amp"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", str(free_port()),
         script, "--iters", "4", "--batch-size", "8", "--resolution", "32", amp, "--device", str(device),
         "--checkpoint-every", "2", "--run-dir", str(run_dir), "--no-progress"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert final_state(run_dir)["step"] == 4 and (run_dir / "generator.pt").is_file()
