"""Checkpoint files: plain state dicts plus metadata, loaded with weights_only=True.

Two artifacts, as in most GAN trainers: a full training state (for resume) and a
generator export (EMA weights + network config, what wgan-sample reads).
Both are written to a temporary file and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from .atomic import atomic_path
from .data.cache import file_digest

TRAINING_STATE = "radiogan-training-state"
GENERATOR_EXPORT = "radiogan-generator"
CLASSIFIER_EXPORT = "radiogan-classifier"
KINDS = (TRAINING_STATE, GENERATOR_EXPORT, CLASSIFIER_EXPORT)
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged, or not of the expected kind."""


def save(payload: dict, path: str | Path) -> None:
    """Atomically write a checkpoint dict (tensors, numbers, strings, lists, dicts only)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path, kind: str) -> dict:
    """Load a checkpoint of the given kind safely, with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: truncated, corrupt or not a safe checkpoint ({first_line[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") not in KINDS:
        raise CheckpointError(f"{path}: not a radiogan checkpoint")
    if payload["format"] != kind:
        raise CheckpointError(f"{path}: is a {payload['format']} file, expected a {kind} file")
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {payload['version']} is newer than this radiogan supports")
    return payload


def file_hash(path: str | Path) -> str:
    """Short SHA-256 of a file, used to name the generator in outputs."""
    return file_digest(path)[:16]


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"training-state-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Training-state checkpoints of a run, oldest first."""
    return sorted((run_dir / "checkpoints").glob("training-state-*.pt"))


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` training-state checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
