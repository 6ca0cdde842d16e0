"""The WGAN-GP training loop: n_critic critic steps, one generator step, EMA, logging, checkpoints."""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from . import checkpoint
from .config import TrainConfig
from .data import ImageSet, to_unit_range
from .data.symmetry import random_dihedral, random_rotation
from .device import autocast_factory, reproducible_kernels, select_device
from .distributed import (
    any_rank,
    average_gradients,
    average_stats,
    from_environment,
    local_device,
    synchronise_batch_norm,
    wait_for_all,
    weight_spread,
)
from .grids import sample_grid, save_png
from .loss import build_loss
from .progress import progress_bar
from .stats import StatsLogger
from .training_state import TrainingState, build_state, generator_export, restore, to_checkpoint

# A callback sees the state after each generator iteration and may return stats to log at
# that step (e.g. a periodic quality score); `best_metric` among them selects generator-best.pt.
Callback = Callable[[int, TrainingState], "dict[str, float] | None"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingStopped(Exception):
    """SIGINT or SIGTERM stopped the run after it wrote a checkpoint; `signal` is the signal's number
    (a command exits with 128 + signal, so a scheduler sees a stopped job, not a finished one)."""

    def __init__(self, signal_number: int, export: Path | None):
        super().__init__(f"stopped by signal {signal_number}")
        self.signal, self.export = signal_number, export


def _grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def _check_finite(stats: dict[str, float], step: int) -> None:
    bad = [k for k, v in stats.items() if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(f"non-finite {', '.join(bad)} at generator iteration {step}; "
                               "the last good checkpoint is kept (try a lower learning rate)")


def critic_step(state: TrainingState, loss, images: torch.Tensor, labels: torch.Tensor,
                cfg: TrainConfig) -> dict[str, float]:
    """One critic update on the next real batch (augmented on the device) and fresh fakes.

    The batch and its random draws are global; this rank trains on its shard (loss.shard).
    """
    device, shard = images.device, loss.shard
    index = state.sampler.next().to(device)
    real = to_unit_range(images[index]).unsqueeze(1)
    if cfg.dihedral:
        real = random_dihedral(real, state.rng)
    if cfg.rotate:
        real = random_rotation(real, state.rng)
    z = torch.randn(cfg.batch_size, cfg.network.z_dim, generator=state.rng).to(device)
    loss_d, stats = loss.critic_loss(shard.take(real), shard.take(labels[index]), shard.take(z), state.rng,
                                     critic_step=state.nimg // cfg.batch_size)
    stats = _update(state, state.D, state.opt_d, loss_d, stats, shard, device)
    state.nimg += cfg.batch_size
    return stats


def generator_step(state: TrainingState, loss, labels: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """One generator update; fake labels follow the real class mix."""
    device, shard = labels.device, loss.shard
    fake_labels = labels[torch.randint(0, labels.numel(), (cfg.batch_size,), generator=state.rng).to(device)]
    z = torch.randn(cfg.batch_size, cfg.network.z_dim, generator=state.rng).to(device)
    loss_g, stats = loss.generator_loss(shard.take(z), shard.take(fake_labels), state.rng)
    return _update(state, state.G, state.opt_g, loss_g, stats, shard, device)


def _update(state: TrainingState, network, optimizer, loss_value: torch.Tensor, stats: dict[str, float], shard,
            device: torch.device) -> dict[str, float]:
    """Stats averaged over the ranks (and checked finite), then one optimiser step on the
    gradient averaged over the ranks."""
    stats = average_stats(stats, shard, device)
    _check_finite(stats, state.step)
    optimizer.zero_grad(set_to_none=True)
    loss_value.backward()
    average_gradients(network, shard)
    optimizer.step()
    return stats


def train_iteration(state: TrainingState, loss, images: torch.Tensor, labels: torch.Tensor,
                    cfg: TrainConfig) -> dict[str, float]:
    """One generator iteration: n_critic critic updates (their stats averaged), then one generator
    update and the EMA (kept by the main rank only: the others hold the same generator)."""
    # Freezing the network that is not being updated skips its weight gradients.
    state.G.requires_grad_(False)
    critic = _Mean()
    for _ in range(cfg.n_critic):
        critic.add(critic_step(state, loss, images, labels, cfg))
    stats = critic.mean()
    stats["Grad/critic"] = _grad_norm(state.D)
    state.G.requires_grad_(True)
    state.D.requires_grad_(False)
    stats.update(generator_step(state, loss, labels, cfg))
    state.D.requires_grad_(True)
    if loss.shard.is_main:
        state.ema.update(state.G, state.nimg, cfg.images_per_iter)
    state.step += 1
    stats["Grad/generator"] = _grad_norm(state.G)
    return stats


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between iterations (a second Ctrl-C aborts at once)."""

    def __init__(self):
        self.requested = False
        self.signal = 0  # the first signal received
        self._previous = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # signal handlers only install in the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signal = True, self.signal or signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Mean:
    """Per-key mean of stats dicts; a key counts only where it was reported (a lazy penalty
    reports on some critic steps, not all)."""

    def __init__(self):
        self.totals, self.counts = defaultdict(float), defaultdict(int)

    def add(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.totals[key] += value
            self.counts[key] += 1

    def mean(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.totals.items()}


class _Ticker:
    """Averages the per-iteration stats over a log interval and measures the speed."""

    def __init__(self, nimg: int):
        self.reset(nimg)

    def reset(self, nimg: int) -> None:
        self.stats = _Mean()
        self.time, self.nimg = time.perf_counter(), nimg

    def add(self, stats: dict[str, float]) -> None:
        self.stats.add(stats)

    def summary(self, state: TrainingState) -> dict[str, float]:
        rate = (state.nimg - self.nimg) / max(time.perf_counter() - self.time, 1e-9)
        tick = self.stats.mean()
        tick.update({"Progress/kimg": state.kimg, "Speed/img_per_s": rate, "Speed/s_per_kimg": 1000 / max(rate, 1e-9),
                     "LR/generator": state.opt_g.param_groups[0]["lr"], "LR/critic": state.opt_d.param_groups[0]["lr"]})
        self.reset(state.nimg)
        return tick


CANDIDATES = "candidates"


def candidate_path(run_dir: Path, step: int) -> Path:
    """The EMA generator export kept at a periodic evaluation."""
    return run_dir / CANDIDATES / f"generator-{step:08d}.pt"


class _RunOutputs:
    """Everything a run writes: checkpoints, generator exports, sample grids and stats."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, data: ImageSet, state: TrainingState, logger: StatsLogger,
                 best_metric: str | None):
        self.run_dir, self.cfg, self.data, self.state, self.logger = run_dir, cfg, data, state, logger
        self.best_metric = best_metric

    def export(self, name: str) -> Path:
        path = self.run_dir / name
        payload = generator_export(self.state, self.cfg, self.data.fingerprint, self.data.pixel_scale_arcsec,
                                   self.data.class_names)
        checkpoint.save(payload, path)
        return path

    def save(self) -> Path:
        """Training state (pruned to the newest few) and the latest generator export."""
        path = checkpoint.checkpoint_path(self.run_dir, self.state.step)
        checkpoint.save(to_checkpoint(self.state, self.cfg, self.data.fingerprint), path)
        checkpoint.prune(self.run_dir, self.cfg.keep_checkpoints)
        return self.export("generator.pt")

    def report(self, extra: dict[str, float]) -> None:
        """Log a callback's stats at this step. When they hold the best metric (a periodic
        evaluation), keep the EMA generator as a candidate (`wgan-select` picks among them per
        class) and export generator-best.pt when the metric improves."""
        self.logger.log(self.state.step, extra)
        if self.best_metric not in extra:
            return
        self.export(str(candidate_path(Path(), self.state.step)))
        if extra[self.best_metric] < self.state.best_score:
            self.state.best_score = extra[self.best_metric]
            self.export("generator-best.pt")

    def grid(self, device: torch.device) -> None:
        grid = sample_grid(self.state.ema.model, self.cfg.network, device)
        self.logger.image("Samples/ema", grid, self.state.step)
        save_png(grid[0].numpy(), self.run_dir / "grids" / f"ema-{self.state.step:08d}.png")


def train(cfg: TrainConfig, data: ImageSet, run_dir: Path, resume: Path | None = None,
          callbacks: Sequence[Callback] = (), best_metric: str | None = None, progress: bool = True) -> Path | None:
    """Train (or continue) a run in `run_dir`; returns the path of the generator export (None on
    the non-main ranks of a torchrun launch, which write nothing). A run stopped by SIGINT or
    SIGTERM writes its checkpoint and raises TrainingStopped.

    When a callback reports `best_metric` (lower is better) and it improves, the EMA generator
    is also exported as generator-best.pt.
    """
    device = select_device(cfg.device)
    shard = from_environment(device.type)
    device = local_device(device)
    reproducible_kernels(device)
    if cfg.network.num_classes != len(data.class_names):
        raise ValueError(f"the network has {cfg.network.num_classes} classes, the data {len(data.class_names)} "
                         f"({', '.join(data.class_names)})")
    if cfg.batch_size % shard.world:
        raise ValueError(f"batch size {cfg.batch_size} does not split evenly over {shard.world} processes")
    state = build_state(cfg, len(data), device)
    if shard.world > 1:
        synchronise_batch_norm(state.G)
    if resume is not None:
        payload = checkpoint.load(resume, checkpoint.TRAINING_STATE)
        if payload["data_fingerprint"] != data.fingerprint:
            # the fingerprint hashes the data-cache format too, so a state written before a format
            # change is refused as well: its data cannot be proven the same
            raise checkpoint.CheckpointError(f"{resume}: was trained on different data, or recorded its data under an "
                                             f"earlier cache format ({payload['data_fingerprint']} vs "
                                             f"{data.fingerprint}); resume it with the code that wrote it")
        restore(state, payload)
    loss = build_loss(state.G, state.D, cfg.loss, autocast_factory(device, cfg.amp), shard)
    images, labels = data.images.to(device), data.labels.to(device)
    main = shard.is_main
    logger = StatsLogger(run_dir, resume_step=state.step if resume else None) if main else None
    if main and resume is None:
        logger.hparams(_flat(cfg), [loss.PROGRESS[1]])
    outputs, ticker = _RunOutputs(run_dir, cfg, data, state, logger, best_metric), _Ticker(state.nimg)
    bar = progress_bar(total=cfg.iters, initial=state.step, unit="it", desc="wgan-train", progress=progress if main else False)
    latest = None
    try:
        with _StopRequest() as stop:
            while state.step < cfg.iters and not any_rank(stop.requested, shard, device):
                ticker.add(train_iteration(state, loss, images, labels, cfg))
                last = state.step == cfg.iters
                if shard.world > 1 and (state.step % cfg.checkpoint_every == 0 or last):
                    _check_in_step(state, shard, device)
                if main:
                    bar.update(1)
                    _main_rank_duties(state, cfg, outputs, ticker, callbacks, bar, device, last, loss.PROGRESS)
            if main:
                latest = outputs.save()  # at the end, and on Ctrl-C / SIGTERM
            if stop.requested and main:
                bar.write(f"stopped at iteration {state.step}; resume with --resume auto --run-dir {run_dir}")
        wait_for_all(shard)
    finally:
        bar.close()
        if logger:
            logger.close()
    if stop.requested:
        # A rank stopped by another rank's signal reports SIGTERM, as a scheduler would send.
        raise TrainingStopped(stop.signal or signal.SIGTERM, latest)
    return latest


def _main_rank_duties(state: TrainingState, cfg: TrainConfig, outputs: _RunOutputs, ticker: _Ticker,
                      callbacks: Sequence[Callback], bar, device: torch.device, last: bool,
                      progress_key: tuple[str, str]) -> None:
    """Callbacks, logging, sample grids and checkpoints: once per run, by the main rank."""
    for extra in filter(None, (cb(state.step, state) for cb in callbacks)):
        outputs.report(extra)
    if state.step % cfg.log_every == 0 or last:
        tick = ticker.summary(state)
        outputs.logger.log(state.step, tick)
        label, key = progress_key
        bar.set_postfix({"kimg": f"{state.kimg:.1f}", "img_s": f"{tick['Speed/img_per_s']:.0f}", label: f"{tick[key]:.3f}"})
    if state.step % cfg.sample_every == 0 or last:
        outputs.grid(device)
    if state.step % cfg.checkpoint_every == 0:
        outputs.save()


def _check_in_step(state: TrainingState, shard, device: torch.device) -> None:
    """Ranks must hold identical weights; a difference means the run is no longer one run."""
    spread = weight_spread([state.G, state.D], shard, device)
    if spread > 1e-5:
        raise RuntimeError(f"processes hold different weights at iteration {state.step} (max difference {spread:.2e})")


def _flat(cfg: TrainConfig) -> dict:
    from dataclasses import asdict

    out = {}
    for key, value in asdict(cfg).items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out
