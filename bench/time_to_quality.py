"""Time to quality: generator scores against CPU-minutes of training, several recipes side by side.

Each recipe is a set of `wgan-train` options. It trains on the real cv fold 0 training split
(unless its options say otherwise) for a fixed budget of process CPU time, exporting the EMA
generator at every mark; only training counts toward the budget (exports are not timed).
After training, every snapshot is scored per class with the released extractor, exactly as
`wgan-eval` scores a generator (FID, KID, precision, recall, activated-pixel and
summed-intensity W1, each beside its real-vs-real floor). Recipes run in separate processes,
`--parallel` at a time with `--threads` each, so a comparison shares one machine and one run.

    python bench/time_to_quality.py --minutes 25 --every 5 --parallel 2 \\
        --recipe "published=--preset small" --recipe "resize=--preset small-resize"

Writes `<out>/<recipe>/` (snapshots, final sample grid, scores.json), `<out>/time_to_quality.json`
(every recipe with the CPU flags and thread count it ran with, and the variant `wgan-train`
picks by default on this machine) and `<out>/time_to_quality.png`. `--include` adds the rows of
an earlier result (e.g. the committed one), so a later round extends one table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ("FRI", "FRII", "Compact", "Bent")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def recipe_config(args: str):
    """The TrainConfig `wgan-train ARGS` would train (cv fold 0 unless ARGS name a split)."""
    from commands.wgan import config_from_args

    argv = shlex.split(args)
    if "--split" not in argv:
        argv += ["--split", "cv", "--fold", "0"]
    return config_from_args(argv)


def train_for(cfg, minutes: float, every: float, out: Path) -> list[dict]:
    """Train until `minutes` of process CPU time; export the EMA generator at every mark."""
    import torch

    from wgan import checkpoint
    from wgan.data import load_dataset
    from wgan.device import autocast_factory
    from wgan.grids import sample_grid, save_png
    from wgan.loss import build_loss
    from wgan.training_loop import train_iteration
    from wgan.training_state import build_state, generator_export

    data = load_dataset(cfg.data)
    device = torch.device("cpu")
    state = build_state(cfg, len(data), device)
    loss = build_loss(state.G, state.D, cfg.loss, autocast_factory(device, cfg.amp))
    images, labels = data.images.to(device), data.labels.to(device)
    marks, trained, wall = [], 0.0, 0.0
    next_mark = every
    while next_mark <= minutes + 1e-9:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        train_iteration(state, loss, images, labels, cfg)
        trained += (time.process_time() - cpu0) / 60
        wall += (time.perf_counter() - wall0) / 60
        if trained >= next_mark:
            path = out / f"snapshot-{next_mark:07.2f}min.pt"
            checkpoint.save(generator_export(state, cfg, data.fingerprint, data.pixel_scale_arcsec, data.class_names),
                            path)
            marks.append({"cpu_minutes": round(trained, 3), "wall_minutes": round(wall, 3), "iters": state.step,
                          "kimg": round(state.kimg, 2), "snapshot": path.name})
            print(f"[{out.name}] {trained:.1f} CPU-min, {state.step} it, {state.kimg:.1f} kimg", flush=True)
            next_mark += every
    save_png(sample_grid(state.ema.model, cfg.network, device)[0].numpy(), out / "grid-final.png")
    return marks


def score(out: Path, marks: list[dict], cfg, extractor_path: Path, n: int) -> dict:
    """Per-class scores of every snapshot (and the floors once), as wgan-eval computes them."""
    from classifier.evaluate_generator import GeneratorEvaluation, evaluate_generator
    from classifier.export import load_classifier
    from wgan.sampling import load_generator

    extractor = load_classifier(extractor_path, "cpu")
    floor = None
    for mark in marks:
        result, _ = evaluate_generator(load_generator(out / mark["snapshot"]), extractor,
                                       GeneratorEvaluation(n_per_class=n))
        mark["scores"] = {c: _summary(result["scores"][c]) for c in ("overall", *CLASSES)}
        mark["class_fidelity"] = result["class_fidelity"]["scores"]
        floor = {c: _summary(result["floor"][c]) for c in ("overall", *CLASSES)}
        floor["class_fidelity"] = result["class_fidelity"]["floor"]
    return {"floor": floor, "extractor": {"path": str(extractor_path), "file_hash": extractor.file_hash}}


def _summary(s: dict) -> dict:
    return {"fid": s["fid"], "kid": s["kid"], "precision": s["precision"], "recall": s["recall"],
            "activated_w1": s["astro"]["activated_pixels"]["wasserstein"],
            "intensity_sum_w1": s["astro"]["intensity_sum"]["wasserstein"]}


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    name, options = args.worker.split("=", 1)
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    cfg = recipe_config(options)
    marks = train_for(cfg, args.minutes, args.every, out)
    extra = score(out, marks, cfg, args.extractor, args.n)
    result = {"recipe": name, "options": options, "config": json.loads(cfg.to_json()), "threads": args.threads,
              "machine": machine(), "budget_cpu_minutes": args.minutes, "marks": marks, **extra}
    (out / "scores.json").write_text(json.dumps(result, indent=2))


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return [f for f in FLAGS if f in line.split()]


def print_report(report: dict, out: Path | None) -> None:
    """A benchmark's JSON on stdout, and into `out` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def machine() -> dict:
    import torch

    default = recipe_config("")
    return {"cpu": platform.processor() or platform.machine(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
            "torch": torch.__version__,
            "wgan_train_default": {"preset": default.preset, "amp_bf16": default.amp,
                                   "upsample": default.network.upsample, "intensity": default.network.intensity,
                                   "n_critic": default.n_critic}}


def run_all(args) -> None:
    """Run every recipe in its own process, `parallel` at a time, then merge and plot."""
    args.out.mkdir(parents=True, exist_ok=True)
    pending, running = list(args.recipe), []
    common = ["--minutes", str(args.minutes), "--every", str(args.every), "--threads", str(args.threads),
              "--n", str(args.n), "--extractor", str(args.extractor), "--out", str(args.out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    while pending or running:
        while pending and len(running) < args.parallel:
            recipe = pending.pop(0)
            running.append(subprocess.Popen([sys.executable, __file__, "--worker", recipe, *common], env=env))
        time.sleep(2)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            if proc.returncode:
                print(f"recipe process {proc.args[3]} failed with exit code {proc.returncode}", file=sys.stderr)
    merge(args)


def earlier_recipes(path: Path) -> list[dict]:
    """The recipes of an earlier merged result, each with the machine it ran on (results written
    before recipes recorded their own machine carry the file's)."""
    earlier = json.loads(path.read_text())
    return [{"machine": earlier["machine"], "budget_cpu_minutes": earlier.get("budget_cpu_minutes"), **r}
            for r in earlier["recipes"]]


def merge(args) -> None:
    """Every finished recipe in --out, after the --include recipes it does not rerun; each recipe
    keeps its machine and budget (recipes written before they recorded a budget: this --minutes)."""
    recipes = [{"budget_cpu_minutes": args.minutes, **json.loads(p.read_text())}
               for p in sorted(args.out.glob("*/scores.json"))]
    names = {r["recipe"] for r in recipes}
    for path in args.include:
        recipes = [r for r in earlier_recipes(path) if r["recipe"] not in names] + recipes
        names |= {r["recipe"] for r in recipes}
    summary = {"benchmark": "time_to_quality", "machine": machine(), "recipes": recipes}
    (args.out / "time_to_quality.json").write_text(json.dumps(summary, indent=2))
    plot(recipes, args.out / "time_to_quality.png")
    table = {r["recipe"]: {f"{m['cpu_minutes']:.1f}min": [round(m["scores"][c]["fid"], 1) for c in CLASSES]
                           for m in r["marks"]} for r in recipes}
    print(json.dumps({"machine": summary["machine"], "fid_per_class_FRI_FRII_Compact_Bent": table}, indent=2))


def line_style(i: int) -> dict:
    """A colour, marker and dash pattern for the i-th recipe, distinct for the first 60: the default
    colour cycle repeats after 10, which made later recipes read as earlier ones."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors
    return {"color": colours[i % 20], "marker": "osD^v"[i % 5], "ls": ("-", "--", ":")[i // 20 % 3]}


def plot(recipes: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(17, 7), sharex=True)
    for row, (metric, label) in enumerate((("fid", "FID"), ("recall", "recall"))):
        for ax, c in zip(axes[row], CLASSES):
            for i, r in enumerate(recipes):
                ax.plot([m["cpu_minutes"] for m in r["marks"]], [m["scores"][c][metric] for m in r["marks"]],
                        label=r["recipe"], **line_style(i))
            if recipes and recipes[0]["floor"]:
                ax.axhline(recipes[0]["floor"][c][metric], color="grey", ls="--", lw=1, label="real-vs-real floor")
            ax.set_title(f"{c}: {label}")
            ax.set_yscale("log" if metric == "fid" else "linear")
            ax.set_xlabel("training CPU-minutes")
    # one legend beside the panels: inside one it hid the curves once there were many recipes
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", default=[], help="NAME=WGAN_TRAIN_OPTIONS (repeat)")
    parser.add_argument("--minutes", type=float, default=25.0, help="training budget per recipe, CPU-minutes")
    parser.add_argument("--every", type=float, default=5.0, help="CPU-minutes between snapshots")
    parser.add_argument("--parallel", type=int, default=2, help="recipes trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per recipe")
    parser.add_argument("--n", type=int, default=400, help="samples per class per score")
    parser.add_argument("--extractor", type=Path, default=ROOT / "checkpoints" / "extractor.pt")
    parser.add_argument("--out", type=Path, default=Path("runs/time_to_quality"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--merge-only", action="store_true", help="re-merge finished recipes in --out")
    parser.add_argument("--include", type=Path, action="append", default=[],
                        help="an earlier time_to_quality.json whose recipes join the merged result (repeat); "
                             "a recipe of the same name in --out replaces its row")
    args = parser.parse_args()
    if args.worker:
        worker(args)
    elif args.merge_only:
        merge(args)
    else:
        if not args.recipe:
            parser.error("give at least one --recipe NAME=OPTIONS")
        run_all(args)


if __name__ == "__main__":
    main()
