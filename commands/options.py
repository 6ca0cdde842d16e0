"""Options and parameter types shared by several commands: same names, same defaults everywhere."""

from __future__ import annotations

import math
from pathlib import Path

import click

from wgan import released
from wgan.checkpoint import CheckpointError
from wgan.data import DataError
from wgan.progress import LINES
from wgan.workdir import DirectoryBusy

# Errors a user can cause (bad input, missing or damaged files, a busy folder): one line, exit 1.
USER_ERRORS = (DataError, CheckpointError, ValueError, OSError, DirectoryBusy)
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer
DEFAULT_EXTRACTOR = released.EXTRACTOR


class RenamingCommand(click.Command):
    """A command some of whose options were renamed (to one vocabulary across commands): the old
    names keep working for a while, hidden from --help, with a one-line notice."""

    renamed: dict[str, str] = {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, [self._rename(arg) for arg in args])

    def _rename(self, arg):
        if not isinstance(arg, str):  # callers such as click's test runner may pass paths
            return arg
        name, equals, value = arg.partition("=")
        if name in self.renamed:
            click.echo(f"notice: {name} is now {self.renamed[name]}; the old name will be removed", err=True)
            return self.renamed[name] + equals + value
        return arg


def command(renamed: dict[str, str] | None = None):
    """Every command: defaults shown in --help, --version (the installed package's), and old option
    names mapped to their new ones (`renamed`, old -> new)."""

    def decorate(function):
        function = click.version_option(package_name="radiogan")(function)
        cls = type("Command", (RenamingCommand,), {"renamed": dict(renamed or {})})
        return click.command(cls=cls, context_settings={"show_default": True})(function)

    return decorate


def group():
    """A command with subcommands: defaults shown in every --help, and --version."""

    def decorate(function):
        function = click.version_option(package_name="radiogan")(function)
        return click.group(context_settings={"show_default": True})(function)

    return decorate


class DeviceType(click.ParamType):
    """A device that exists on this machine: auto, cpu, cuda or cuda:N."""

    name = "device"

    def convert(self, value, param, ctx):
        from wgan.device import select_device

        try:
            select_device(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return value


class FiniteFloat(click.FloatRange):
    """A float range that also refuses inf and nan."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return number


DEVICE = DeviceType()
SEED = click.IntRange(0, MAX_SEED)


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        items = sorted({int(v) for v in value.split(",")})
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers") from None
    if param.name == "folds" and not all(f >= 0 for f in items):
        raise click.BadParameter("folds are numbered from 0")  # the upper end is the data's (checked on loading)
    if param.name == "seeds" and not all(0 <= s <= MAX_SEED for s in items):
        raise click.BadParameter(f"seeds are 0..{MAX_SEED}")
    return items


def registry(writes: bool = False):
    """--registry: a registry file. Names are otherwise looked up in the user registry, then the
    packaged (read-only) one; releases and promotions are otherwise written to the user registry."""
    help = ("Register into this file; default: your user registry ($RADIOGAN_REGISTRY, else "
            "~/.local/share/radiogan/registry.json). The installed package's registry is read-only."
            if writes else "Look names up in this registry only; default: your user registry, then the packaged one.")
    return click.option("--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help=help)


def engine(workers_default: str = "the CPU cores (or GPUs)"):
    """Where a study's cells run (augment.engine): local Dask workers, an existing Dask cluster,
    or batch jobs through dask-jobqueue."""
    from augment.engine import BATCH_SYSTEMS

    decorators = [
        click.option("--workers", type=click.IntRange(1), default=None,
                     help="Cells run at once: local Dask worker processes, one thread each (1: in this process), or "
                          f"with --cluster the batch jobs to start; default: {workers_default}."),
        click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="Run the cells on an existing Dask cluster (dask scheduler / dask worker, or any Dask "
                          "deployment) instead of local workers."),
        click.option("--cluster", type=click.Choice(BATCH_SYSTEMS), default=None,
                     help="Start the workers as batch jobs (dask-jobqueue; its YAML config, with the --job-* "
                          "overrides)."),
        click.option("--job-cores", type=click.IntRange(1), default=None, help="With --cluster: cores per job."),
        click.option("--job-memory", default=None, help="With --cluster: memory per job, e.g. 8GB."),
        click.option("--job-walltime", default=None, help="With --cluster: wall time per job, e.g. 04:00:00."),
        click.option("--job-account", default=None, help="With --cluster: the account (project) jobs are charged to."),
        click.option("--job-queue", default=None, help="With --cluster: the queue (partition)."),
    ]

    def decorate_all(function):
        for decorate in reversed(decorators):
            function = decorate(function)
        return function

    return decorate_all


def engine_from(opts: dict, default_workers: int):
    """The augment.engine.Engine of the --workers, --scheduler, --cluster and --job-* options."""
    from augment.engine import Engine, EngineError

    if opts["scheduler"] and opts["cluster"]:
        raise EngineError("--scheduler and --cluster both say where the workers are; give one")
    job = {key: opts[f"job_{key}"] for key in ("cores", "memory", "walltime", "account", "queue")}
    if any(job.values()) and not opts["cluster"]:
        raise EngineError("the --job-* options are for the batch jobs of --cluster")
    return Engine(workers=opts["workers"] or (1 if opts["cluster"] else default_workers), scheduler=opts["scheduler"],
                  batch=opts["cluster"], job={k: v for k, v in job.items() if v is not None})


def folds(default: str = "0,1,2,3,4"):
    return click.option("--folds", default=default, callback=_int_list,
                        help="Cross-validation folds, comma-separated (e.g. 0,1,2).")


def seeds(default: str = "0"):
    return click.option("--seeds", default=default, callback=_int_list, help="Training seeds, e.g. 0,1,2.")


def data_source():
    return click.option("--data", "source", default="first",
                        help="'first' (the bundled FIRST set), or your own labelled set: a folder with one subfolder "
                             "of PNG or FITS images per class (any class names), or an .h5 file in the FIRST schema.")


def split_file():
    return click.option("--splits", type=click.Path(dir_okay=False), default=None,
                        help="With your own --data: the split file (image hash -> test or fold). Default: drawn once "
                             "per data set (seed 0, 20 % test, 5 stratified folds), kept in the cache and copied "
                             "into every run folder as splits.json.")


def device():
    return click.option("--device", type=DEVICE, default="auto", help="auto, cpu, cuda or cuda:N.")


def classifier_amp():
    return click.option("--amp/--no-amp", default=None,
                        help="bf16 autocast for the classifier; default: on with CUDA. On a CPU with native bf16 "
                             "(AVX-512 BF16 or AMX) it speeds up the ViT and the ResNet about 1.7-2x "
                             "(bench/classifier_step.py), not the small CNN.")


def resolve_classifier_amp(amp: bool | None, device: str) -> bool:
    """--amp's default: on where the classifier runs on CUDA. An --amp that this machine can only
    emulate is kept (its numbers are what was asked for) with a notice on stderr."""
    from wgan.device import emulated_bf16_notice, select_device

    chosen = select_device(device)
    amp = chosen.type == "cuda" if amp is None else amp
    notice = emulated_bf16_notice(chosen, amp)
    if notice:
        click.echo(notice, err=True)
    return amp


def weight_decay():
    return click.option("--weight-decay", type=click.FloatRange(0), default=1e-4, help="AdamW/SGD weight decay.")


def warmup_epochs():
    return click.option("--warmup-epochs", type=click.IntRange(0), default=1,
                        help="Epochs of linear learning-rate warm-up before the cosine decay (the guide's ViT "
                             "recipe uses 5).")


def batchnorm_stats():
    return click.option("--batchnorm-stats", type=click.Choice(["recalibrated", "running"]), default="recalibrated",
                        help="BatchNorm statistics for validation, test and the export (resnet, vit-conv): "
                             "recomputed over the real training images after every epoch, or the running "
                             "averages of training (every run before this option; they can put validation at "
                             "one class: docs/augment/tuned/bn-probe).")


def progress():
    # --no-progress drops the bar, not the news: plain lines as in a batch job's log (wgan.progress)
    return click.option("--progress/--no-progress", default=True,
                        callback=lambda ctx, param, value: True if value else LINES,
                        help="A progress bar on a terminal; otherwise, or with --no-progress, one plain line "
                             "every minute (RADIOGAN_PROGRESS_SECONDS sets the interval).")


def dihedral(help_text: str = "Random rotations/flips of the square on real training images."):
    return click.option("--dihedral/--no-dihedral", default=True, help=help_text)


def extractor(*names: str, help_text: str = "Frozen classifier whose features the quality scores use."):
    return click.option(*(names or ("--extractor",)), type=click.Path(path_type=Path), default=DEFAULT_EXTRACTOR,
                        help=help_text)
