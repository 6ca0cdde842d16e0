"""One stats dict per tick, to stats.jsonl and TensorBoard (namespaced tags like `Loss/critic`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .atomic import write_text


class StatsLogger:
    """Appends to `stats.jsonl` and TensorBoard events in the run directory.

    On resume from a checkpoint at step T, lines and events at steps > T (written by a run
    that died after that checkpoint) are dropped, so the logs read as one uninterrupted run.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        # tensorboard is slow to import, so only a training run pays for it
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "stats.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
            write_text(self.path, "".join(f"{line}\n" for line in kept))
        self.writer = SummaryWriter(str(run_dir), purge_step=None if resume_step is None else resume_step + 1)

    def log(self, step: int, stats: dict[str, float]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps({"step": step, **stats}) + "\n")
        for tag, value in stats.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """Log a [1 or 3, H, W] uint8 image."""
        self.writer.add_image(tag, image, step)

    def hparams(self, hparams: dict, metric_tags: list[str]) -> None:
        """Register the run's hyperparameters with TensorBoard's HParams view (no fake metric values)."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        flat = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in hparams.items()}
        for summary in hparams_summary(flat, dict.fromkeys(metric_tags, 0.0)):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        self.writer.close()
