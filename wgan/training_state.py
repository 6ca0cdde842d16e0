"""Everything a run needs to continue exactly where it stopped, and its checkpoint form."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import checkpoint
from .config import TrainConfig
from .ema import EMA
from .networks import Critic, Generator


class BatchSampler:
    """Epoch-wise random permutations of the data set, derived from (seed, epoch).

    Its whole state is two integers, so a resumed run draws exactly the same batches.
    """

    def __init__(self, size: int, batch_size: int, seed: int):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.epoch, self.position = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=gen)

    def next(self) -> torch.Tensor:
        """The next batch of indices (a batch may span two epochs)."""
        parts, need = [], self.batch_size
        while need:
            take = min(need, self.size - self.position)
            parts.append(self._perm[self.position : self.position + take])
            self.position += take
            need -= take
            if self.position == self.size:
                self.epoch, self.position = self.epoch + 1, 0
                self._perm = self._permutation()
        return torch.cat(parts)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._perm = self._permutation()


@dataclass
class TrainingState:
    G: Generator
    D: Critic
    ema: EMA
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator  # every random draw of the loop (noise, augmentation, GP mixing)
    sampler: BatchSampler
    step: int = 0  # generator iterations done
    nimg: int = 0  # real images shown to the critic
    best_score: float = float("inf")  # best periodic quality score so far (lower is better)

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


def build_state(cfg: TrainConfig, dataset_size: int, device: torch.device) -> TrainingState:
    """Fresh networks (seeded), optimizers and random streams."""
    torch.manual_seed(cfg.seed)
    G = Generator(cfg.network).to(device)
    D = Critic(cfg.network).to(device)
    adam = dict(betas=(cfg.optim.beta1, cfg.optim.beta2))
    return TrainingState(
        G=G,
        D=D,
        ema=EMA(G, cfg.ema_half_life_kimg, cfg.ema_rampup),
        opt_g=torch.optim.Adam(G.parameters(), lr=cfg.optim.lr_g, **adam),
        opt_d=torch.optim.Adam(D.parameters(), lr=cfg.optim.lr_d, **adam),
        rng=torch.Generator().manual_seed(cfg.seed),
        sampler=BatchSampler(dataset_size, cfg.batch_size, cfg.seed),
    )


def to_checkpoint(state: TrainingState, cfg: TrainConfig, data_fingerprint: str) -> dict:
    return {
        "format": checkpoint.TRAINING_STATE,
        "version": checkpoint.FORMAT_VERSION,
        "config": cfg.to_json(),
        "data_fingerprint": data_fingerprint,
        "step": state.step,
        "nimg": state.nimg,
        "generator": state.G.state_dict(),
        "critic": state.D.state_dict(),
        "generator_ema": state.ema.model.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "rng": state.rng.get_state(),
        "sampler": state.sampler.state_dict(),
        "best_score": state.best_score,
    }


def restore(state: TrainingState, payload: dict) -> None:
    """Load a training-state checkpoint into freshly built state (same config)."""
    state.G.load_state_dict(payload["generator"])
    state.D.load_state_dict(payload["critic"])
    state.ema.model.load_state_dict(payload["generator_ema"])
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    state.rng.set_state(payload["rng"])
    state.sampler.load_state_dict(payload["sampler"])
    state.step, state.nimg = int(payload["step"]), int(payload["nimg"])
    state.best_score = float(payload.get("best_score", float("inf")))


def generator_export(state: TrainingState, cfg: TrainConfig, data_fingerprint: str, pixel_scale: float,
                     class_names: tuple[str, ...]) -> dict:
    """What wgan-sample needs: the EMA generator's weights and how to rebuild it."""
    return {
        "format": checkpoint.GENERATOR_EXPORT,
        "version": checkpoint.FORMAT_VERSION,
        "config": cfg.to_json(),  # the run config; its `network` rebuilds the generator
        "state_dict": state.ema.model.state_dict(),
        "class_names": list(class_names),
        "pixel_scale_arcsec": pixel_scale,
        "data_fingerprint": data_fingerprint,
        "step": state.step,
        "kimg": state.kimg,
    }


def differences(a, b, where: str = "") -> list[str]:
    """Where two training states (or any nesting of dicts, lists and tensors) differ, as paths like
    `.generator.net.0.weight`; empty when they are equal bit for bit. How a resumed run is checked
    against one that ran straight through."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)  # equal() promotes dtypes
        return [] if same else [where]
    if isinstance(a, dict):
        if not isinstance(b, dict) or a.keys() != b.keys():
            return [f"{where} (keys)"]
        return [d for key in a for d in differences(a[key], b[key], f"{where}.{key}")]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [f"{where} (length)"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]
