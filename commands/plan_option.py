"""augment-eval --plan: a study plan's [options] become the defaults of the command's options, and
the command line may not contradict them (augment.plan holds the plan itself)."""

from __future__ import annotations

from pathlib import Path

import click

from augment.plan import PlanError, load

# options that say how to run, not what: free on the command line beside a plan
RUN_OPTIONS = {"workers", "device", "progress", "dry_run", "out", "overwrite", "reuse_from", "registry_path", "plan",
               "scheduler", "cluster", "job_cores", "job_memory", "job_walltime", "job_account", "job_queue"}


def apply_plan(ctx: click.Context, path: Path | None):
    """Eager: load the plan and make its [options] the defaults of the other options."""
    if path is None:
        return None
    try:
        plan = load(path)
    except PlanError as error:
        raise click.BadParameter(str(error), ctx=ctx, param_hint="--plan") from None
    by_long = {opt[2:]: param for param in ctx.command.params for opt in param.opts if opt.startswith("--")}
    defaults = {}
    for key, value in plan.options.items():
        param = by_long.get(key)
        if param is None or param.name == "plan":
            raise click.BadParameter(f"{path}: [options] names '{key}', which augment-eval does not have",
                                     ctx=ctx, param_hint="--plan")
        if param.multiple:
            value = [str(v) for v in (value if isinstance(value, list) else [value])]
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        defaults[param.name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta["plan"] = plan
    return plan


def refuse_overrides(ctx: click.Context, plan) -> None:
    """A declared study runs as declared: an option the plan sets may not be given again."""
    if plan is None:
        return
    for name in ctx.default_map or {}:
        if name not in RUN_OPTIONS and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            raise ValueError(f"--{name.replace('_', '-')} is set by the plan '{plan.name}'; edit the plan (under a "
                             "new name) rather than override it on the command line")
