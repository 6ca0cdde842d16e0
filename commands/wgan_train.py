"""wgan-train's work: its options turned into a TrainConfig (a new run) or the saved config with
the options that may change (a resumed run), the run directory and its lock, then training."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import click
import torch

from wgan import checkpoint, presets, released
from wgan.config import EvalConfig, OptimConfig, TrainConfig
from wgan.data import DataConfig, class_names, load_dataset, record_splits, resolve_splits
from wgan.device import emulated_bf16_notice, native_bf16, select_device
from wgan.diffaug import parse_policy
from wgan.distributed import is_main_process
from wgan.loss import LossConfig
from wgan.workdir import exclusive, latest_run_dir, new_run_dir


class ResumeError(ValueError):
    """--resume names no run that can be continued (a usage error, not a damaged file)."""

# Options that may change when a run is resumed; the rest come from the run's saved config.
RESUMABLE = {"kimg", "iters", "log_every", "sample_every", "checkpoint_every", "keep", "device", "amp", "progress",
             "eval_every", "eval_extractor", "eval_n", "eval_tstr_epochs"}


def config_from_options(opts: dict) -> TrainConfig:
    """Build the config of a new run from the CLI options; options left at None take the preset's value."""
    recipe = presets.get(opts["preset"])
    network = presets.network(opts["preset"], output=opts["output_activation"],
                              **{k: opts[k] for k in ("resolution", "upsample", "intensity") if opts[k]})
    network = presets.scale_width(network, opts["width"])
    network.validate()
    crop = opts["crop"]
    data = resolve_splits(DataConfig(source=opts["source"], split=opts["split"], fold=opts["fold"], subset="train",
                                     crop=crop, resolution=None if network.resolution == crop else network.resolution,
                                     splits=opts["splits"]))
    network.num_classes = len(class_names(data))  # a user's set may have 2 or 6 classes
    device = select_device(opts["device"])
    cfg = TrainConfig(
        preset=opts["preset"],
        data=data,
        network=network,
        loss=LossConfig(name=opts["loss"], gp_lambda=opts["gp_lambda"], gp_every=opts["gp_every"],
                        diffaug=parse_policy(opts["diffaug"])),
        optim=OptimConfig(lr_g=_or(opts["lr_g"], recipe.lr_g), lr_d=_or(opts["lr_d"], recipe.lr_d),
                          beta1=opts["betas"][0], beta2=opts["betas"][1]),
        batch_size=opts["batch_size"],
        n_critic=_or(opts["n_critic"], recipe.n_critic),
        ema_half_life_kimg=opts["ema_kimg"],
        ema_rampup=opts["ema_rampup"] or None,
        dihedral=opts["dihedral"],
        rotate=opts["rotate"],
        seed=opts["seed"],
        device=opts["device"],
        amp=native_bf16(device) if opts["amp"] is None else opts["amp"],
        threads=torch.get_num_threads(),
        eval=EvalConfig(every=opts["eval_every"], n_per_class=opts["eval_n"], extractor=str(opts["eval_extractor"]),
                        tstr_epochs=opts["eval_tstr_epochs"]),
    )
    return apply_schedule(cfg, opts, given=set(opts))


def _or(value, default):
    return default if value is None else value


def apply_schedule(cfg: TrainConfig, opts: dict, given: set[str]) -> TrainConfig:
    """Length, intervals and the periodic evaluation: the options that may differ between a run
    and its resumption.

    Only the options in `given` are applied, so a resumed run keeps its saved length and
    intervals unless the command line names new ones.
    """
    if "iters" in given and opts["iters"]:
        cfg.iters = opts["iters"]
    elif "kimg" in given and opts["kimg"]:
        cfg.iters = cfg.iters_for_kimg(opts["kimg"])  # neither: the config's default length
    for option, attribute in (("log_every", "log_every"), ("sample_every", "sample_every"),
                              ("checkpoint_every", "checkpoint_every"), ("keep", "keep_checkpoints"),
                              ("device", "device"), ("amp", "amp")):
        if option in given and opts[option] is not None:  # --amp's default None means "where native"
            setattr(cfg, attribute, opts[option])
    for option, attribute in (("eval_every", "every"), ("eval_n", "n_per_class"), ("eval_tstr_epochs", "tstr_epochs")):
        if option in given:
            setattr(cfg.eval, attribute, opts[option])
    if "eval_extractor" in given:
        cfg.eval.extractor = str(opts["eval_extractor"])
    return cfg


def amp_for_resume(cfg: TrainConfig, given: set[str]) -> str | None:
    """A run saved with bf16 autocast, resumed where bf16 is only emulated (about 70x slower),
    continues in float32 unless --amp is given (then it keeps bf16, with a notice of the cost);
    returns the notice to print, if any."""
    device = select_device(cfg.device)
    if cfg.amp and "amp" not in given and not native_bf16(device):
        cfg.amp = False
        return ("notice: this run trained with bf16 autocast, which this machine only emulates; it continues "
                "in float32 (pass --amp to keep bf16)")
    return emulated_bf16_notice(device, cfg.amp)  # --amp given: kept, and the user told what it costs


def resolve_resume(resume: str, run_dir: Path | None, runs_root: Path) -> Path | None:
    """The checkpoint to resume from. 'auto' continues --run-dir (or the newest run under
    runs_root) and refuses when there is no run to continue; 'if-any' does the same but starts a
    fresh run when there is none (for job scripts that are resubmitted); else a checkpoint path."""
    if resume not in ("auto", "if-any"):
        return Path(resume)
    where = run_dir or latest_run_dir(runs_root)
    found = checkpoint.list_checkpoints(where) if where else []
    if found or resume == "if-any":
        return found[-1] if found else None
    if run_dir is None:
        raise ResumeError(f"--resume auto: no run with a checkpoint under {runs_root}; start one without --resume")
    raise ResumeError(f"--resume auto: {run_dir} holds no run to continue (no checkpoints/); check the "
                      "path, or start a run there without --resume")


def holds_run(run_dir: Path) -> bool:
    """Whether a directory already has a run's files (a config or training states)."""
    return (run_dir / "config.json").exists() or bool(checkpoint.list_checkpoints(run_dir))


def run_training(opts: dict, ctx: click.Context) -> None:
    """The whole of wgan-train: resume or new run, the directory's lock, training, exit status."""

    try:
        resume = resolve_resume(opts["resume"], opts["run_dir"], opts["runs_root"]) if opts["resume"] else None
    except ResumeError as error:
        raise click.UsageError(str(error)) from None
    if resume is not None:
        payload = checkpoint.load(resume, checkpoint.TRAINING_STATE)
        given = {k for k in opts if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
        cfg = apply_schedule(TrainConfig.from_json(payload["config"]), opts, given)
        notice = amp_for_resume(cfg, given)
        if notice:
            click.echo(notice, err=True)
        run_dir = opts["run_dir"] or resume.parent.parent
        ignored = sorted(given - RESUMABLE - {"resume", "run_dir", "runs_root", "dry_run"})
        if ignored:
            click.echo(f"resuming {run_dir}: the run's saved config is used; ignoring {', '.join(ignored)}", err=True)
        click.echo(f"resuming from {resume} at generator iteration {payload['step']}", err=True)
        if cfg.threads and cfg.threads != torch.get_num_threads() and select_device(cfg.device).type == "cpu":
            click.echo(f"warning: the run started with {cfg.threads} CPU threads and resumes with "
                       f"{torch.get_num_threads()}; the result will differ from an uninterrupted run in the last "
                       f"bits (set OMP_NUM_THREADS={cfg.threads} for a bit-exact continuation)", err=True)
    else:
        cfg = config_from_options(opts)
        notice = emulated_bf16_notice(select_device(cfg.device), cfg.amp)
        if notice:
            click.echo(notice, err=True)
        run_dir = opts["run_dir"]
        if run_dir is not None and is_main_process() and holds_run(run_dir):
            raise click.UsageError(f"{run_dir} already holds a run; continue it with --resume auto, "
                                   "or choose another --run-dir")
    if opts["dry_run"]:
        click.echo(cfg.to_json())
        click.echo(f"# run directory: {run_dir or opts['runs_root'] / ('<next>-' + cfg.run_name())}", err=True)
        click.echo(f"# length: {cfg.iters} generator iterations = {cfg.total_kimg:.1f} kimg", err=True)
        return
    data = load_dataset(cfg.data)
    callbacks, best_metric = quality_monitor(cfg, data)  # before anything is written
    if run_dir is None:
        run_dir = new_run_dir(opts["runs_root"], cfg.run_name())
    # Only the main process of a torchrun launch writes, so only it takes the directory's lock and
    # checks it again under the lock (a writer may have just started); the others would see its config.
    main = is_main_process()
    with exclusive(run_dir, "wgan-train") if main else contextlib.nullcontext():
        if main and resume is None and holds_run(run_dir):
            raise click.UsageError(f"{run_dir} already holds a run; continue it with --resume auto")
        _train_in(run_dir, cfg, data, resume, callbacks, best_metric, opts["progress"])


def _train_in(run_dir: Path, cfg: TrainConfig, data, resume, callbacks, best_metric, progress: bool) -> None:
    from wgan.atomic import write_text
    from wgan.training_loop import TrainingDiverged, TrainingStopped, train

    main = is_main_process()  # under torchrun the other processes write and print nothing
    if main:
        write_text(run_dir / "config.json", cfg.to_json())
        record_splits(cfg.data, run_dir)
        click.echo(f"run directory: {run_dir} ({len(data)} images, {cfg.iters} iterations = {cfg.total_kimg:.1f} kimg, "
                   f"device {select_device(cfg.device)})", err=True)
    try:
        export = train(cfg, data, run_dir, resume=resume, callbacks=callbacks, best_metric=best_metric,
                       progress=progress)
    except TrainingDiverged as error:
        raise click.ClickException(str(error)) from None
    except TrainingStopped as stopped:
        # 128 + signal (130 for Ctrl-C, 143 for SIGTERM): a scheduler records a stopped job, not a finished one.
        ctx = click.get_current_context()
        ctx.exit(128 + stopped.signal)
    if main:
        click.echo(f"generator export: {export}")


def quality_monitor(cfg: TrainConfig, data) -> tuple[list, str | None]:
    """The periodic quality callback of the config's `eval`, when it asks for one. The scorer
    lives in the classifier package; only this command layer wires it in, so the wgan package
    stays independent of it."""
    if not cfg.eval.every:
        return [], None
    from classifier.evaluate_generator import check_extractor, scoring_data
    from classifier.export import load_classifier
    from classifier.monitor import BEST_METRIC, PeriodicQuality

    extractor = load_classifier(cfg.eval.extractor or released.EXTRACTOR, select_device(cfg.device))
    check_extractor(extractor, list(data.class_names))  # its classes first: the plainest reason to refuse it
    scored = scoring_data(cfg.data, cfg.network.resolution, extractor.resolution)
    reference = data if scored == cfg.data else load_dataset(scored)
    # the floor at matched size: real images this run's generator never sees
    unseen = [load_dataset(replace(scored, subset=s)) for s in ("valid", "test")] if cfg.data.subset == "train" else None
    return [PeriodicQuality(extractor, reference, cfg.eval.every, cfg.eval.n_per_class,
                            tstr_epochs=cfg.eval.tstr_epochs, unseen=unseen)], BEST_METRIC
