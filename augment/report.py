"""The outputs of `augment-eval`: a printed table, results.json, report.md and gain.png."""

from __future__ import annotations

import json
from pathlib import Path

from classifier.engine import TrainSettings
from wgan.atomic import atomic_path, write_text

from .analysis import class_names, reported_gain
from .cost import describe_spent
from .report_sections import (
    RUNS_ONLY,
    TWO_WAY,
    accuracy_p,
    columns,
    cross_validated,
    decision_checks,
    declared,
    format_interval,
    format_p,
    per_generator,
)


def _score(summary: dict, arm: str, key: str) -> str:
    s = summary[arm]["scores"][key]
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def format_gain(summary: dict, arm: str, key: str) -> str:
    """The gain as verdicts read it: the two-way interval where the cells allow it, else runs only."""
    return format_interval(reported_gain(summary[arm], key))


def format_runs_only(summary: dict, arm: str, key: str) -> str:
    return format_interval(summary[arm]["gain"][key])


def format_table(summary: dict, reference: str, controls: dict | None = None) -> str:
    """Two blocks: mean ± std per arm, then the paired gain over the reference arm; then the
    verdict of each arm against its negative control."""
    width, keys = max(len(a) for a in summary) + 2, columns(summary)
    head = "".join(f"{c:>26s}" for c in keys)
    lines = [f"{'arm':{width}s}{head}"]
    lines += [f"{arm:{width}s}" + "".join(f"{_score(summary, arm, c):>26s}" for c in keys) for arm in summary]
    lines += ["", f"gain over {reference} (paired; 95 % interval over runs and test images where the cells store "
              f"per-image predictions; * excludes 0):", f"{'arm':{width}s}{head}"]
    lines += [f"{arm:{width}s}" + "".join(f"{format_gain(summary, arm, c):>26s}" for c in keys)
              for arm in summary if arm != reference]
    failed = sum(len(s["failures"]) for s in summary.values())
    lines.append(f"\nruns that failed to learn (kept in the means): {failed}")
    lines += [f"{arm} against {c['control']}: {c['verdict']}" for arm, c in (controls or {}).items()]
    return "\n".join(lines)


def markdown(results: dict) -> str:
    summary, reference = results["summary"], results["reference_arm"]
    cfg, keys = results["config"], columns(summary)
    rows = ["| arm | runs | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    rows += [f"| {arm} | {s['n_runs']} | " + " | ".join(_score(summary, arm, c) for c in keys) + " |"
             for arm, s in summary.items()]
    pr_cols = [f"{c}/{m}" for c in class_names(summary) for m in ("precision", "recall")]
    pr = ["| arm | " + " | ".join(k.replace("/precision", " P").replace("/recall", " R") for k in pr_cols) + " |",
          "|---|" + "---|" * len(pr_cols)]
    pr += [f"| {arm} | " + " | ".join(_score(summary, arm, k) for k in pr_cols) + " |" for arm in summary]
    p = accuracy_p(summary, reference)
    gains = ["| arm | " + " | ".join(keys) + " | accuracy p | Holm p |", "|---|" + "---|" * (len(keys) + 2)]
    gains += [f"| {arm} | " + " | ".join(format_gain(summary, arm, c) for c in keys)
              + (f" | {format_p(p[arm]['p'])} | {format_p(p[arm]['holm'])} |" if arm in p else " | | |")
              for arm in summary if arm != reference]
    runs_only = ["| arm | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    runs_only += [f"| {arm} | " + " | ".join(format_runs_only(summary, arm, c) for c in keys) + " |"
                  for arm in summary if arm != reference]
    significant = [f"{arm}: {key} {reported_gain(summary[arm], key)['mean']:+.3f}" for arm in summary
                   if arm != reference for key in keys if reported_gain(summary[arm], key)["significant"]]
    two_way = any(s.get("gain_two_way") for s in summary.values())
    failures = [f"- {arm} fold {f['fold']} seed {f['seed']}: {f['reason']}"
                for arm, s in summary.items() for f in s["failures"]]
    leak = results.get("leakage") or {}
    return "\n".join([
        "# Augmentation study", "",
        f"Command: `{results['command']}`", "",
        f"Generators: {_generators(cfg, results)}; model {cfg['base']['model']}, "
        f"mode {results['mode']}, schedule {_schedule(cfg)}, folds {cfg['folds']}, seeds {cfg['seeds']}, "
        f"budget {cfg['base']['epochs']} passes over the real training split ({cfg.get('budget', 'equal-steps')}), "
        f"real fraction {cfg['real_fraction']}, generated pool {cfg['pool']} "
        f"({cfg.get('pool_draws', 'nested')} draws), fidelity filter "
        f"{cfg['fidelity_filter'] or 'off'}, generated images labelled by {cfg.get('generated_labels', 'conditioning')}"
        f"{_reference(cfg)}.", "",
        "Computed under (every setting that changes a number; each cell in `cells/` records its own identity): "
        f"training `{json.dumps(TrainSettings.from_record(cfg['base']).effective(), sort_keys=True)}`, "
        f"data `{json.dumps(cfg['data'], sort_keys=True)}`.", "",
        *declared(results),
        *decision_checks(results, summary, reference),
        "Test metrics on the real test split, mean ± std over folds x seeds:", "", *rows, "",
        "Per-class precision (P) and recall (R):", "", *pr, "",
        f"Paired gain over `{reference}` (same fold and seed), 95 % interval "
        + (TWO_WAY if two_way else "over runs only (the cells store no per-image predictions)")
        + "; * marks an interval that excludes 0:", "", *gains, "",
        "Significant: " + ("; ".join(significant) if significant else "none") + ".", "",
        *([RUNS_ONLY, "", *runs_only, ""] if two_way else []),
        *per_generator(summary),
        *cross_validated(summary, reference),
        *_controls(results, keys),
        f"Runs that failed to learn (kept in the means): {len(failures)}", *failures, "",
        f"Cells that raised an error (not in the means; the same command retries them): "
        f"{len(results.get('errors', []))}",
        *(f"- {e['arm']} fold {e['fold']} seed {e['seed']}: {e['error']}" for e in results.get("errors", [])), "",
        f"Compute of the finished cells, summed over the workers that ran them: "
        f"{describe_spent(results['compute']) if 'compute' in results else 'not recorded'}.", "",
        "What each fold's generator was trained on, and how many of that fold's validation images it saw "
        "(this biases epoch selection only; none saw a test image): "
        + ("; ".join(f"fold {f}: {v['generator_data']}, {v['valid_images_seen']}" for f, v in leak.items()) or "none")
        + ".", "", *_extra_data(leak),
        "![gain per class](gain.png)", ""])


def _extra_data(leak: dict) -> list[str]:
    """The warning of a real fraction below 1 run with generators that learned from dropped images."""
    seen = {f: v["dropped_train_images_seen"] for f, v in leak.items() if any(v.get("dropped_train_images_seen", {}).values())}
    if not seen:
        return []
    return ["**The generators learned from training images that the real fraction drops** (run with "
            "`--allow-generator-extra-data`; per fold, per seed: "
            + "; ".join(f"fold {f}: " + ", ".join(f"seed {s} {n}" for s, n in v.items()) for f, v in seen.items())
            + "): their images carry labelled data the classifiers are denied, so a gain here may come from "
            "those images, not from generation.", ""]


def _controls(results: dict, keys: list[str]) -> list[str]:
    """Each arm against its negative control: paired difference arm - control, all pairs and
    without the pairs where a run failed, and the verdict."""
    controls = results.get("controls") or {}
    if not controls:
        return []
    lines = ["Each arm against its negative control (same fold and seed; paired difference arm - control, "
             "95 % interval over runs and test images where the cells allow it, else over runs only (marked 'runs "
             "only'); a collapsed run can dominate a difference, so it is also given without the pairs where either "
             "run failed):", "", "| arm - control | pairs | " + " | ".join(keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for arm, c in controls.items():
        for label, part in (("all", "difference"), ("without failed", "difference_without_failed")):
            if c[part]:
                n = next(iter(c[part].values()))["n"]
                two_way = c.get(f"{part}_two_way")
                shown = two_way or c[part]
                cells = " | ".join(format_interval(shown[k]) for k in keys)
                lines.append(f"| {arm} - {c['control']} ({label}{'' if two_way else ', runs only'}) | {n} | {cells} |")
    lines += ["", *(f"- {arm}: {c['verdict']}." for arm, c in controls.items()), ""]
    return lines


def _reference(cfg: dict) -> str:
    """The reference classifier's epochs, when they are not the cells' own."""
    epochs = cfg.get("reference_epochs")
    return f" (reference classifier: {epochs} epochs)" if epochs not in (None, cfg["base"]["epochs"]) else ""


def _generators(cfg: dict, results: dict) -> str:
    """Each fold's generators: a release by its pinned name, any other file by path and hash."""
    gens = cfg.get("generators") or {}
    if not gens:
        return "none"
    hashes, names = results.get("generator_hashes") or {}, results.get("generator_releases") or {}

    def listed(value, n: int) -> list:
        value = [value] if value is None or isinstance(value, str) else list(value)
        return value + [None] * (n - len(value))

    shown = []
    for fold, paths in gens.items():
        paths = [paths] if isinstance(paths, str) else paths
        found, pinned = listed(hashes.get(str(fold)), len(paths)), listed(names.get(str(fold)), len(paths))
        for i, path in enumerate(paths):
            which = f"fold {fold}{f' replica {i}' if len(paths) > 1 else ''}"
            shown.append(f"{which} `{pinned[i]}`" if pinned[i] else f"{which} `{shown_path(path)}` ({(found[i] or '?')[:12]})")
    return ", ".join(shown)


def shown_path(path: str) -> str:
    """A path under the working directory as relative to it: released generators are found as
    absolute paths, which named the machine a report was written on rather than the file."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def plot_gain(summary: dict, reference: str, path: Path) -> None:
    """Per-class F1 gain (and accuracy) against ratio, with the paired intervals as error bars
    (two-way where the cells allow it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio_arms = [(float(a[2:]), a) for a in summary if a.startswith("r=") and "+" not in a]
    ratio_arms.sort()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, key in enumerate(["accuracy", *(f"{c}/f1" for c in class_names(summary))]):
        xs = [r + (i - 2) * 0.04 for r, _ in ratio_arms]
        gains = [(summary[a].get("gain_two_way") or summary[a]["gain"])[key] for _, a in ratio_arms]
        means = [g["mean"] for g in gains]
        errs = [[g["mean"] - g["low"] if g["n"] > 1 else 0 for g in gains],
                [g["high"] - g["mean"] if g["n"] > 1 else 0 for g in gains]]
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=key.replace("/f1", " F1"))
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("ratio generated / real")
    ax.set_ylabel(f"gain over {reference} (95 % interval over runs and test images)"
                  if any(s.get("gain_two_way") for s in summary.values()) else f"gain over {reference}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(results: dict, out: Path) -> None:
    write_text(out / "results.json", json.dumps(results, indent=2))
    write_text(out / "report.md", markdown(results))
    plot_gain(results["summary"], results["reference_arm"], out / "gain.png")


def _schedule(cfg: dict) -> str:
    if cfg["schedule"] != "pretrain-finetune":
        return cfg["schedule"]
    pretrain = cfg.get("pretrain_epochs") or cfg["base"]["epochs"]  # absent or null: as long as fine-tuning
    return f"pretrain-finetune ({pretrain} epochs on the generated images, then {cfg['base']['epochs']} on the real split)"
