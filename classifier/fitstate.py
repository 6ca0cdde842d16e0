"""Resumable classifier training: the state of a `fit` between two epochs, saved every few
epochs, so a training that is stopped (a study stopped at the end of a session, a preempted
cluster job, a crashed worker) goes on from its last saved epoch instead of its first, to the
same result bit for bit on the same device.

A state is a training-state checkpoint (`wgan.checkpoint`: atomic write, digest, no pickle)
holding the model, optimizer and schedule, every random stream the training draws from, the
best epoch so far with its weights, and the history. It carries the key of the training it
belongs to: a state of other settings or other images under the same path is not resumed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wgan import checkpoint

OF = "classifier-fit"  # what kind of training state this is (the GAN's training states are another)
EVERY = 20  # epochs between saves: seconds of work on a GPU, a few minutes on a CPU


@dataclass
class FitState:
    """Where one training keeps its state, and what it is (`key`: any string that changes
    whenever the training's result would)."""

    path: Path
    key: str
    every: int = EVERY
    # the file as last read: the caller asks for the epoch (its log resumes there) and fit for the
    # state, one read and one note between them; a save or discard makes the next load read again
    _read: bool = field(default=False, init=False, repr=False, compare=False)
    _saved: dict | None = field(default=None, init=False, repr=False, compare=False)

    def load(self) -> dict | None:
        """The saved state of this training, or None (none saved, another training's, or a
        damaged file: each says so and the training starts from its first epoch)."""
        if not self._read:
            self._saved, self._read = self._from_file(), True
        return self._saved

    def _from_file(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            saved = checkpoint.load(self.path, checkpoint.TRAINING_STATE)
        except checkpoint.CheckpointError as error:
            print(f"note: {error}; training starts from its first epoch", file=sys.stderr)
            return None
        if saved.get("of") != OF or saved.get("key") != self.key:
            print(f"note: {self.path} is the state of another training; this one starts from its first epoch",
                  file=sys.stderr)
            return None
        return saved

    def epoch(self) -> int:
        """The last epoch the saved state has finished (0: none to resume)."""
        saved = self.load()
        return int(saved["epoch"]) if saved else 0

    def save(self, state: dict) -> None:
        checkpoint.save({"format": checkpoint.TRAINING_STATE, "version": checkpoint.FORMAT_VERSION,
                         "of": OF, "key": self.key, **state}, self.path)
        self._read, self._saved = False, None

    def discard(self) -> None:
        """Remove the state once the training's result is kept elsewhere."""
        self.path.unlink(missing_ok=True)
        self._read, self._saved = False, None


def snapshot(model: torch.nn.Module, optimizer, scheduler, rng: torch.Generator, device: torch.device | str,
             fresh) -> dict:
    """What a fit trains with, at the end of an epoch: the model, optimizer and schedule, and every
    random stream it draws from: its own (order, augmentations), torch's global one (dropout), on
    a GPU the device's, and a per-batch image source's."""
    taken = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "rng": rng.get_state(), "torch_rng": torch.get_rng_state()}
    if torch.device(device).type == "cuda":  # callers may name the device by a string
        taken["cuda_rng"] = torch.cuda.get_rng_state(device)
    if fresh is not None:
        taken["fresh"] = fresh.state_dict()
    return taken


def restore(saved: dict, model: torch.nn.Module, optimizer, scheduler, rng: torch.Generator,
            device: torch.device | str, fresh) -> None:
    """Put a snapshot back into the objects a new fit built."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng.set_state(saved["rng"])
    torch.set_rng_state(saved["torch_rng"])
    if torch.device(device).type == "cuda" and "cuda_rng" in saved:  # a CPU state resumed on a GPU draws anew there
        torch.cuda.set_rng_state(saved["cuda_rng"], device)
    if fresh is not None:
        fresh.load_state_dict(saved["fresh"])
