"""Where a computation runs: the device, CPU threads, and bf16 where the hardware has it."""

from __future__ import annotations

import contextlib
import os

import torch


def available_devices() -> list[str]:
    return ["auto", "cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else the CPU; a device that does not exist is a ValueError
    that lists the ones that do."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    count = torch.cuda.device_count()
    exists = device is not None and (device.type == "cpu" or (
        device.type == "cuda" and count > 0 and (device.index is None or device.index < count)))
    if not exists:
        raise ValueError(f"no device '{name}' here; available: {', '.join(available_devices())}")
    return device


def reproducible_kernels(device: torch.device | str) -> None:
    """On CUDA, choose the deterministic kernels, so that a run (and a resumed run) repeats bit for
    bit on the same GPU, as it does on the CPU: by default cuDNN picks convolution algorithms that
    add in a varying order, and cuBLAS needs a fixed workspace to do the same. Ops that have no
    deterministic CUDA kernel warn instead of failing (warn_only), so a run is never refused for it.
    Process-wide, set by the entry points of training (a GAN or a classifier); the CPU needs nothing."""
    if torch.device(device).type != "cuda":
        return
    # read when cuBLAS starts; training entry points run before any CUDA matrix product
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with `n` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def native_bf16(device: torch.device) -> bool:
    """bf16 convolutions run natively on CUDA (Ampere and newer) and on CPUs with AVX-512 BF16
    or AMX; elsewhere they are emulated, measured about 70x slower than float32 on an AVX2 CPU."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def emulated_bf16_notice(device: torch.device, amp: bool) -> str | None:
    """The line to print when bf16 autocast was asked for where it is only emulated: the run is
    still correct (bf16 numbers, as asked), only many times slower, which a user should hear of
    before hours go by (on an AVX2 CPU a vit-conv training step 14x, the CNN's 5x, the critic step
    about 70x: bench/classifier_step.py --emulated-bf16, bench/critic_step.py)."""
    if not amp or native_bf16(device):
        return None
    lacks = "AVX-512 BF16 or AMX" if device.type == "cpu" else "bf16 support (a GPU older than Ampere)"
    return (f"notice: bf16 autocast (--amp) is only emulated on this {device.type} (no {lacks}): "
            "about 5-70x slower than float32 here; --no-amp runs in float32 at full speed")


def autocast_factory(device: torch.device, amp: bool):
    """A context factory: bf16 autocast on `device` when AMP is on, a no-op context otherwise."""
    if amp:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
