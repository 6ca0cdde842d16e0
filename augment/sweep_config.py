"""What an augmentation study is: its arms (ratios, controls, baselines) and its whole
configuration (`SweepConfig`), apart from how its cells run (`sweep`) and are reused (`reuse`),
which both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from classifier.engine import TrainSettings
from wgan.data import DataConfig

from . import mixing
from .plan import Plan

BASELINES = {  # name -> the one training option it adds to the base settings
    "class-weighted": {"class_weighted": True},
    "oversample": {"oversample": True},
    "dihedral": {"dihedral": True},
}
SCHEDULES = ("mixed", "pretrain-finetune")
# equal-steps: every arm gets the batches of `epochs` passes over the real split (a mixed set's
# real images are then seen less often); equal-real-passes: the real images are seen as often as
# in the real-only arm, so the steps grow with the ratio.
BUDGETS = ("equal-steps", "equal-real-passes")
# fixed: one pool of generated images for the whole training; fresh-per-epoch: a new pool every
# epoch; fresh-per-batch: every generated image in every batch is new (as published)
POOLS = ("fixed", "fresh-per-epoch", "fresh-per-batch")
# per-arm: each arm draws its own generated images (seeded from the arm's identity, fold and seed),
# so arms compared with one another are independent replications; nested: every arm of a fold and
# seed draws from the same seeds (a larger or filtered pool extends a smaller one), for
# dose-response designs and for the studies committed before per-arm draws existed
POOL_DRAWS = ("per-arm", "nested")
# the negative control: generated images whose labels carry no class information (see pool.shuffle_labels)
# augmented-real: in place of the generated images, classically augmented real ones (rotations,
# shifts, flux scaling, noise; augment.augmented_real), through the same fidelity filter: what the
# generator adds over augmenting the real images
CONTROLS = ("shuffled-labels", "augmented-real")
# conditioning: a generated image carries the class it was drawn for; teacher: the class
# probabilities the cell's real-only classifier gives it (soft labels, as in knowledge
# distillation), so an image drawn for FRI that looks like FRII teaches what it looks like
GENERATED_LABELS = ("conditioning", "teacher")


@dataclass(frozen=True)
class Arm:
    name: str
    spec: mixing.MixSpec = mixing.MixSpec()
    overrides: tuple[tuple[str, bool | int], ...] = ()  # training options changed from the base
    control: str | None = None  # one of CONTROLS


@dataclass
class SweepConfig:
    # fold -> that fold's generator exports (one, or replicas trained with other seeds: a cell of
    # classifier seed s uses replica s mod their number); None only when no arm adds generated images
    generators: dict[int, tuple[Path, ...]] | None
    arms: list[Arm]
    folds: list[int]
    seeds: list[int]
    base: TrainSettings  # epochs = budget in passes over the real training split
    data: DataConfig = field(default_factory=lambda: DataConfig(split="cv", resolution=64))
    schedule: str = "mixed"
    pretrain_epochs: int | None = None  # pretrain-finetune: passes over the generated images (None: base.epochs)
    pool: str = "fixed"  # one of POOLS
    pool_draws: str = "per-arm"  # one of POOL_DRAWS
    fidelity_filter: float = 0.0  # drop generated images put in another class with this confidence (0: off)
    generated_labels: str = "conditioning"  # one of GENERATED_LABELS
    reference_epochs: int | None = None  # epochs of the filter's / teacher's real-only classifier (None: base.epochs)
    real_fraction: float = 1.0
    allow_generator_extra_data: bool = False  # real fraction < 1 with generators that saw the dropped images
    budget: str = "equal-steps"  # one of BUDGETS
    out: Path = Path("runs/augment")
    save_models: bool = False  # also write each cell's classifier export beside its JSON
    reuse_from: tuple[Path, ...] = ()  # other study folders: their cells and reference classifiers of the same identity are reused
    plan: Plan | None = None  # the declared plan the study runs under (augment.plan)
    # > 0: cross-validated scoring: this stratified share of the training split picks the epoch, and
    # the fold's validation split (never used to choose anything then) is scored beside the test set
    inner_split: float = 0.0

    def __post_init__(self):
        if self.generators:  # a single export per fold is a one-replica tuple
            self.generators = {fold: (g,) if isinstance(g, (str, Path)) else tuple(g) for fold, g in self.generators.items()}
        if self.pretrain_epochs is not None and self.schedule != "pretrain-finetune":
            raise ValueError(f"pretrain epochs only apply to the pretrain-finetune schedule, not '{self.schedule}'")
        if self.reference_epochs is not None and not self.uses_reference:
            raise ValueError("reference epochs only apply with the fidelity filter or teacher labels")
        if self.pool_draws not in POOL_DRAWS:
            raise ValueError(f"unknown pool draws '{self.pool_draws}'; choose from {', '.join(POOL_DRAWS)}")
        if self.generated_labels not in GENERATED_LABELS:
            raise ValueError(f"unknown generated labels '{self.generated_labels}'; choose from {', '.join(GENERATED_LABELS)}")
        if self.generated_labels == "teacher" and self.pool != "fixed":
            raise ValueError("teacher labels need the fixed pool (they are computed once per cell), not "
                             f"pool '{self.pool}'")
        if self.pool == "fresh-per-batch" and any(arm.control == "augmented-real" for arm in self.arms):
            raise ValueError("the augmented-real control draws its images per pool, not per batch: use pool 'fixed' "
                             "or 'fresh-per-epoch'")
        if self.generated_labels == "teacher" and any(arm.control == "shuffled-labels" for arm in self.arms):
            raise ValueError("teacher labels would give the control's shuffled-label images their class "
                             "information back; run the control in a study without them")

    @property
    def uses_reference(self) -> bool:
        """Whether the adding arms need the real-only reference classifier (see filtering)."""
        return bool(self.fidelity_filter) or self.generated_labels == "teacher"

    @property
    def reference_base(self) -> TrainSettings:
        """The base settings the reference classifier trains with (its own epochs, when given)."""
        return self.base if self.reference_epochs is None else replace(self.base, epochs=self.reference_epochs)

    @property
    def pretraining_epochs(self) -> int:
        """Epochs of the pre-training phase (when the schedule has one)."""
        return self.base.epochs if self.pretrain_epochs is None else self.pretrain_epochs

    def generator(self, fold: int, seed: int) -> Path:
        """The generator export a cell of `fold` and classifier seed `seed` draws from."""
        replicas = self.generators[fold]
        return replicas[seed % len(replicas)]

    def model_path(self, arm: Arm, fold: int, seed: int) -> Path:
        return self.cell_path(arm, fold, seed).with_suffix(".pt")

    def cell_path(self, arm: Arm, fold: int, seed: int) -> Path:
        return self.out / "cells" / arm.name / f"fold{fold}-seed{seed}.json"

    def state_path(self, arm: Arm, fold: int, seed: int, phase: str = "train") -> Path:
        """Where a running cell keeps its training state (classifier.fitstate), until its record is
        written: a stopped study goes on from there."""
        return self.out / "partial" / arm.name / f"fold{fold}-seed{seed}.{phase}.pt"


def build_arms(specs: list[mixing.MixSpec], base: TrainSettings, baselines: bool,
               controls: str | tuple[str, ...] | None = None) -> list[Arm]:
    """One arm per ratio (and beside it one arm per control), plus each baseline the base
    settings do not already include."""
    controls = (controls,) if isinstance(controls, str) else tuple(controls or ())
    arms = []
    for spec in specs:
        arms.append(Arm(spec.label, spec))
        arms += [Arm(f"{spec.label}+{control}", spec, control=control) for control in controls if not spec.is_zero]
    if baselines:
        arms += [Arm(f"real+{name}", mixing.MixSpec(), tuple(change.items()))
                 for name, change in BASELINES.items() if any(getattr(base, k) != v for k, v in change.items())]
    return arms


COMPUTE_MATCHED = "real+compute-matched"


def compute_matched_arm(config: SweepConfig) -> Arm:
    """Real images only, trained for as many epochs as an adding arm's classifiers train in all:
    its own, its reference classifier's (fidelity filter, teacher labels) and its pre-training's.
    Whatever an adding arm gains over this arm is not bought by the extra training alone."""
    extra = (config.reference_base.epochs if config.uses_reference else 0) + \
        (config.pretraining_epochs if config.schedule == "pretrain-finetune" else 0)
    if not extra:
        raise ValueError("a compute-matched control needs arms that train more than the real-only one: the fidelity "
                         "filter, teacher labels or the pretrain-finetune schedule")
    return Arm(COMPUTE_MATCHED, mixing.MixSpec(), (("epochs", config.base.epochs + extra),))
