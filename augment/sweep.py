"""The grid of an augmentation study: arms (ratios and cheap baselines) x folds x seeds.

Every cell trains one classifier from scratch on the (mixed) training split of its fold, picks
the epoch on that fold's real validation split and tests on the real test split. All arms get
the same optimisation budget, `epochs` x the batches of one pass over the real training split,
so a gain cannot come from more optimiser steps on a bigger set. Each cell's result is written
atomically to its own JSON file with the full identity of what produced it (every setting that
changes its number, and the generator's content hash rather than its path); a rerun reuses a
cell only when the whole identity matches, and refuses to mix cells of another sweep (see
`reuse`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace

import torch

from classifier.engine import evaluate, fit
from classifier.export import save_classifier
from classifier.fitstate import FitState
from classifier.identity import first_difference
from classifier.models import build_model
from wgan import released
from wgan.atomic import write_text
from wgan.data import ImageSet, generated_set, load_dataset
from wgan.data.cache import file_digest
from wgan.device import select_device, torch_threads
from wgan.progress import progress_bar
from wgan.sampling import load_generator
from wgan.stats import StatsLogger

from . import analysis, augmented_real, filtering, mixing, pool
from .engine import RETRIES, Engine, cell_device, host, run_all
from .reuse import adopt, cell_identity, cells, check_reuse, generator_hash, todo
from .sweep_config import Arm, SweepConfig

PHASES = ("pretrain", "train")  # the trainings of a cell, each with its own state while it runs


def run_cell(config: SweepConfig, arm: Arm, fold: int, seed: int, device: str = "cpu") -> dict:
    """Train and test one classifier; returns the cell's record (run_sweep writes it)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    dev = select_device(device)
    data = replace(config.data, fold=fold)
    real, valid, test = (load_dataset(replace(data, subset=s)) for s in ("train", "valid", "test"))
    real = mixing.real_fraction(real, config.real_fraction, seed)
    held_out = valid  # the images scored beside the test set, under cross-validated scoring
    if config.inner_split:
        real, valid = mixing.inner_split(real, config.inner_split)  # `valid` now picks epochs only
    counts = mixing.generated_counts(real.class_counts(), arm.spec)
    per_epoch = len(real) + (sum(counts) if config.budget == "equal-real-passes" else 0)
    settings = replace(config.base, seed=seed, steps_per_epoch=math.ceil(per_epoch / config.base.batch_size),
                       **dict(arm.overrides))
    reference = (filtering.reference_classifier(config.out, config.reference_base, seed, asdict(data), real, valid,
                                                dev, config.reuse_from)
                 if sum(counts) and config.uses_reference else None)
    accept = (filtering.accept_by_fidelity(reference, config.fidelity_filter, dev, settings.tta)
              if reference is not None and config.fidelity_filter else None)
    train_for, fresh = _training_sets(config, arm, real, counts, seed, fold, accept)
    targets = (filtering.teacher_targets(reference, train_for(1), len(real), dev, settings.tta)
               if reference is not None and config.generated_labels == "teacher" else None)
    trained_on = train_for(1).fingerprint  # real + generated (pool hash); fresh pools change per epoch
    identity = cell_identity(config, arm, fold, seed, generator_hash(config, fold, seed))
    model = build_model(settings.model, real.resolution, len(real.class_names), seed=seed)
    pretrain = config.schedule == "pretrain-finetune" and sum(counts) > 0
    offset = config.pretraining_epochs if pretrain else 0
    states, done = _training_states(config, arm, fold, seed, [identity, trained_on, valid.fingerprint], pretrain)
    logger = StatsLogger(config.out / "tensorboard" / arm.name / f"fold{fold}-seed{seed}", resume_step=done)
    try:
        if pretrain:  # generated images only, then the real split alone; logged as epochs 1..P, P+1..P+E
            fixed = _generated_only(train_for(1), len(real)) if config.pool == "fixed" else None
            generated_for = lambda epoch: fixed if fixed is not None else _generated_only(train_for(epoch), len(real))  # noqa: E731
            model = fit(model, generated_for, valid, replace(settings, epochs=config.pretraining_epochs), dev,
                        log=lambda e, row: logger.log(e, {f"pretrain/{k}": v for k, v in row.items()}),
                        progress=False, fresh=fresh, targets=None if targets is None else targets[len(real):],
                        state=states["pretrain"]).model
            train_for, targets = (lambda epoch: real), None
        result = fit(model, train_for, valid, settings, dev, log=lambda e, row: logger.log(offset + e, row),
                     progress=False, fresh=fresh, targets=targets, state=states["train"])
    finally:
        logger.close()
    test_report = evaluate(result.model, test, dev, settings.amp, settings.tta)
    best = result.history[result.best_epoch - 1]
    cell = {
        "arm": arm.name, "fold": fold, "seed": seed, "ratio": asdict(arm.spec), "overrides": dict(arm.overrides),
        "schedule": config.schedule, "real_counts": real.class_counts(), "generated_counts": dict(zip(real.class_names, counts)),
        "steps_per_epoch": settings.steps_per_epoch,
        "best_epoch": result.best_epoch, "valid_accuracy": best["valid/accuracy"], "test": test_report,
        # the fold's validation images, scored by the model whose epoch the inner split chose
        **({"valid_cv": evaluate(result.model, held_out, dev, settings.amp, settings.tta)} if config.inner_split else {}),
        "failure": analysis.failure(best["valid/accuracy"], test_report),
        "data_fingerprints": {"train": trained_on, "valid": valid.fingerprint, "test": test.fingerprint},
        "identity": identity,
        # which of the fold's generators it drew from (the hash is in the identity)
        "generator": _generator_record(config, fold, seed) if sum(counts) else None,
        **_run_record(started, cpu_started, done, dev),
    }
    if config.save_models:
        save_classifier(result.model, asdict(settings), asdict(data), real.resolution, list(real.class_names),
                        {"test": test_report, "best_epoch": result.best_epoch}, config.model_path(arm, fold, seed))
    return cell  # the client checks and writes it (run_sweep): a worker writes no cell


def _run_record(started: float, cpu_started: float, done: int, dev: torch.device) -> dict:
    """How long and where a cell ran: not part of its identity (its numbers do not depend on them
    beyond rounding), but the cost estimate of later sweeps and a reader comparing cells from a
    CPU and a GPU machine need them."""
    return {
        "seconds": time.perf_counter() - started,  # wall time
        # a cell that went on from an interrupted run's state: its seconds are those of this run only
        **({"resumed_after_epoch": done} if done else {}),
        # CPU time of the process that ran it (the report sums it over workers); a worker runs one
        # cell at a time, so its other threads (Dask's own) add little
        "cpu_seconds": time.process_time() - cpu_started,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
        "host": host(),  # the worker it ran on
    }


def _training_states(config: SweepConfig, arm: Arm, fold: int, seed: int, what: list, pretrain: bool
                     ) -> tuple[dict[str, FitState], int]:
    """The cell's training states, one per phase, keyed by `what` it trains (its identity and
    images): an interrupted run of this very cell goes on from its last saved epoch. With the
    last epoch its log keeps (0: a fresh start; pre-training epochs count first)."""
    key = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
    states = {phase: FitState(config.state_path(arm, fold, seed, phase), f"{key}:{phase}")
              for phase in (PHASES if pretrain else ("train",))}
    if states["train"].epoch():
        return states, (config.pretraining_epochs if pretrain else 0) + states["train"].epoch()
    return states, states["pretrain"].epoch() if pretrain else 0


def _training_sets(config: SweepConfig, arm: Arm, real: ImageSet, counts: list[int], seed: int, fold: int,
                   accept: pool.Accept | None):
    """(epoch -> training set: the real split plus that epoch's generated images, per-batch
    source of fresh generated images or None)."""
    if not sum(counts):
        return (lambda epoch: real), None
    draws = pool.pool_seed(config, arm, fold, seed)
    if arm.control == "augmented-real":  # no generator: augmented real images in its place
        return _augmented_real_sets(config, real, counts, draws, accept)
    gen = load_generator(config.generator(fold, seed))
    control = arm.control is not None

    def pool_at(offset: int, cached: bool) -> ImageSet:
        drawn = pool.draw_accepted(gen, counts, draws, offset, cached, accept)
        return pool.shuffle_labels(drawn, seed) if control else drawn

    if config.pool == "fresh-per-batch":  # placeholders in the set, replaced batch by batch
        labels, _ = pool.pool_seeds(counts, draws)
        slots = generated_set(torch.zeros(len(labels), gen.resolution, gen.resolution, dtype=torch.uint8), labels,
                              f"generated-stream:{gen.file_hash[:16]}:{draws}", gen.pixel_scale_arcsec, real.class_names)
        mixed = mixing.mix(real, slots)
        return (lambda epoch: mixed), pool.Stream(gen, draws, accept, counts if control else None)
    if config.pool == "fresh-per-epoch":
        return (lambda epoch: mixing.mix(real, pool_at(epoch * pool.FRESH_STRIDE, cached=False))), None
    mixed = mixing.mix(real, pool_at(0, cached=True))
    return (lambda epoch: mixed), None


def _augmented_real_sets(config: SweepConfig, real: ImageSet, counts: list[int], draws: int,
                         accept: pool.Accept | None):
    """_training_sets of the augmented-real control: a fixed pool, or a new one every epoch."""
    def pool_at(offset: int) -> ImageSet:
        return augmented_real.draw_accepted(real, counts, draws + offset, accept)

    if config.pool == "fresh-per-epoch":
        return (lambda epoch: mixing.mix(real, pool_at(epoch))), None
    mixed = mixing.mix(real, pool_at(0))
    return (lambda epoch: mixed), None


def _generator_record(config: SweepConfig, fold: int, seed: int) -> dict:
    replicas, file = config.generators[fold], config.generator(fold, seed)
    return {"file": str(file), "release": released.release_name(file_digest(file)),  # e.g. first-cv2-s1@<hash>
            "replica": seed % len(replicas), "replicas": len(replicas)}


def _generated_only(mixed: ImageSet, n_real: int) -> ImageSet:
    """The generated part of a mixed set (mix puts the real images first)."""
    keep = torch.arange(len(mixed)) >= n_real
    return mixed.subset(keep.numpy(), "generated-only")


def _worker(args) -> dict:
    """Run one cell; an exception becomes an error record, so one failing cell stops no other."""
    config, arm, fold, seed, device = args
    try:
        with torch_threads(1):  # one thread per cell: results do not depend on how many run at once
            return run_cell(config, arm, fold, seed, cell_device(device))
    except Exception as error:  # noqa: BLE001 - reported, and the cell is retried by the next run
        return {"arm": arm.name, "fold": fold, "seed": seed, "error": f"{type(error).__name__}: {error}"}


@dataclass
class SweepOutcome:
    cells: list[dict]  # finished cells, grid order
    errors: list[dict]  # cells that raised this time ({arm, fold, seed, error}); the next run retries them


def run_sweep(config: SweepConfig, engine: Engine | None = None, device: str = "auto",
              progress: bool = True) -> SweepOutcome:
    """Run every unfinished cell on `engine` (CUDA devices are shared round-robin). Finished cells
    are reused only under the same identity; each returned record is checked against the identity
    this process expects before it is written, once; a cell that raises (or whose workers all
    died) is listed in `errors.json` in the output folder and left unfinished, and the other
    cells go on."""
    engine = engine or Engine()  # one worker: in this process
    check_reuse(config)
    adopt(config)
    pending = todo(config)
    jobs = [(config, *c, device) for c in pending]  # each worker picks its own GPU (cell_device)
    expected = {(a.name, f, s): cell_identity(config, a, f, s, generator_hash(config, f, s)) for a, f, s in pending}
    # each fold's test images as this process reads them: a worker that read others (another file
    # at the data's path on its machine) computed a number of another data set
    test_images = {f: load_dataset(replace(config.data, fold=f, subset="test")).fingerprint
                   for f in sorted({f for _, f, _ in pending})}
    bar = progress_bar(total=len(cells(config)), initial=len(cells(config)) - len(pending), unit="cell", desc="study",
                       progress=progress)
    errors = []
    def announce(link: str, threads: int) -> None:  # batch jobs may still be queued: 0 threads so far
        bar.write(f"cells run on {engine.describe()} ({threads} worker thread{'s' if threads != 1 else ''} now)"
                  + (f"; Dask dashboard: {link}" if link else ""))

    try:
        for (_, arm, fold, seed, _), result in run_all(engine, _worker, jobs, _cell_key, on_start=announce,
                                                       on_running=lambda n: bar.set_postfix(running=n)):
            if isinstance(result, BaseException):
                result = {"arm": arm.name, "fold": fold, "seed": seed,
                          "error": f"its workers died {RETRIES + 1} times ({type(result).__name__}: {result})"}
            elif "error" not in result:
                problem = record_problem(result, expected[(arm.name, fold, seed)], test_images[fold])
                if problem:
                    result = {"arm": arm.name, "fold": fold, "seed": seed,
                              "error": f"its worker computed another cell ({problem}); not written"}
                else:
                    write_text(config.cell_path(arm, fold, seed), json.dumps(result, indent=2))  # marks it done
                    for phase in PHASES:  # the record is the cell's result now, not its training state
                        config.state_path(arm, fold, seed, phase).unlink(missing_ok=True)
            if "error" in result:
                errors.append(result)
                bar.write(f"cell {result['arm']} fold {result['fold']} seed {result['seed']} failed: {result['error']}")
            bar.update()
    finally:
        bar.close()
    errors.sort(key=lambda e: (e["arm"], e["fold"], e["seed"]))
    error_file = config.out / "errors.json"
    if errors:
        write_text(error_file, json.dumps(errors, indent=2))
    elif error_file.exists():
        error_file.unlink()
    finished = [json.loads(config.cell_path(*c).read_text()) for c in cells(config) if config.cell_path(*c).exists()]
    return SweepOutcome(finished, errors)


def record_problem(record: dict, identity: dict, test_images: str | None) -> str:
    """Why a worker's record is not the cell this process asked for ("" when it is): another
    identity (e.g. another generator file at that path on the worker's machine: its content hash
    is in the identity) or other test images (another data file at the data's path)."""
    problem = first_difference(record.get("identity"), identity)
    if problem:
        return problem
    tested = (record.get("data_fingerprints") or {}).get("test")
    if test_images is not None and tested != test_images:
        return f"tested on images {tested}, this process reads {test_images}"
    return ""


def _cell_key(job) -> str:
    _, arm, fold, seed, _ = job
    return f"cell {arm.name} fold {fold} seed {seed}"
