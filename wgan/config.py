"""The resolved configuration of a training run, written to config.json in the run directory."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from . import presets
from .data import DataConfig
from .loss import LossConfig
from .networks import NetworkConfig


@dataclass
class OptimConfig:
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9


@dataclass
class EvalConfig:
    """The periodic quality evaluation (wgan-train --eval-every): part of the run's config, since
    it decides which generator becomes generator-best.pt."""

    every: int = 0  # generator iterations between evaluations (0: none)
    n_per_class: int = 200  # EMA samples per class
    extractor: str | None = None  # the frozen classifier's file; None: the released extractor
    tstr_epochs: int = 0  # also train the baseline CNN on the samples this many epochs


_RECIPE = presets.get(presets.DEFAULT_PRESET)  # the default preset's schedule is the config's default


@dataclass
class TrainConfig:
    preset: str = presets.DEFAULT_PRESET
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=lambda: presets.network(presets.DEFAULT_PRESET))
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr_g=_RECIPE.lr_g, lr_d=_RECIPE.lr_d))
    batch_size: int = 64  # real images per critic step
    n_critic: int = _RECIPE.n_critic  # critic steps per generator step
    # length in generator iterations (--kimg converts to this): the released generators' 2,500
    iters: int = 2500
    ema_half_life_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    dihedral: bool = True  # random rotations/flips of the square on real batches
    rotate: bool = False  # plus arbitrary-angle rotation
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast (CUDA, or a CPU with native bf16)
    log_every: int = 50  # generator iterations between stats lines
    sample_every: int = 1000  # ... between sample grids in TensorBoard
    checkpoint_every: int = 1000  # ... between training-state checkpoints
    keep_checkpoints: int = 3
    eval: EvalConfig = field(default_factory=EvalConfig)
    threads: int | None = None  # CPU threads the run started with; a resume at another count is not bit-exact

    @property
    def images_per_iter(self) -> int:
        """Real images the critic sees per generator iteration."""
        return self.batch_size * self.n_critic

    def iters_for_kimg(self, kimg: float) -> int:
        return max(1, math.ceil(kimg * 1000 / self.images_per_iter))

    @property
    def total_kimg(self) -> float:
        return self.iters * self.images_per_iter / 1000

    def run_name(self) -> str:
        source = "first" if self.data.source == "first" else "custom"
        split = f"{self.data.split}{self.data.fold if self.data.split == 'cv' else ''}"
        return f"{self.preset}-{self.network.resolution}px-{source}-{split}-b{self.batch_size}-s{self.seed}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        raw = json.loads(text)
        raw["loss"]["diffaug"] = tuple(raw["loss"]["diffaug"])
        return cls(
            **{k: v for k, v in raw.items() if k not in ("data", "network", "loss", "optim", "eval")},
            data=DataConfig(**raw["data"]),
            network=NetworkConfig(**raw["network"]),
            loss=LossConfig(**raw["loss"]),
            optim=OptimConfig(**raw["optim"]),
            eval=EvalConfig(**raw.get("eval", {})),  # runs from before it was in the config: none
        )
