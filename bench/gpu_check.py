"""The CUDA path, checked and measured in one run (about 8 minutes on one GPU).

Run from the repository root, in the project's environment, on a machine with a GPU:

    python bench/gpu_check.py                      # every step, on cuda
    python bench/gpu_check.py --steps train-resume,sample
    python bench/gpu_check.py --device cpu --smoke # this script itself, at toy sizes, without a GPU

Steps, in order (each in its own process, under its own time limit):
  tests             pytest -m cuda (tests/test_cuda.py)
  train-resume      wgan-train of the default recipe, bf16 where native: one run straight through and
                    one stopped at two thirds and resumed; the final training states must be equal bit
                    for bit, as on the CPU
  sample            wgan-sample of the trained generator on the device
  eval              wgan-eval of it on the device
  torchrun          torchrun --nproc-per-node 1 wgan-train (NCCL on CUDA)
  critic-step-paper, critic-step-small-asinh
                    bench/critic_step.py: the published loop, fp32, bf16, channels_last
  released-recipe   the released first-cv0 recipe (its card's command) trained on the device, timed,
                    and scored as releases are, beside the release's own matched scores: the time to
                    the released quality on this device

Each finished step writes <out>/<step>.json and is skipped on a rerun, so a check cut short by a
time limit continues where it stopped (a failed step runs again). Then <out>/gpu_check.json holds
every step with the device, torch, CUDA and CPU flags, and <out>/log.txt the output of every
command. Training runs go under --runs (kept out of the package).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from time_to_quality import cpu_flags  # noqa: E402

from wgan import checkpoint  # noqa: E402
from wgan.device import select_device  # noqa: E402
from wgan.training_state import differences  # noqa: E402

# iterations, images and time limits (seconds) of each size; smoke: toy sizes that check the script
SIZES = {
    "full": {"iters": 300, "n_sample": 10000, "n_per_class": 400, "critic_steps": 10, "released_iters": None,
             "limits": {"tests": 240, "train-resume": 180, "sample": 90, "eval": 180, "torchrun": 120,
                        "critic-step": 150, "released-recipe": 420}},
    "smoke": {"iters": 6, "n_sample": 64, "n_per_class": 20, "critic_steps": 1, "released_iters": 4,
              "limits": {"tests": 600, "train-resume": 300, "sample": 120, "eval": 300, "torchrun": 300,
                         "critic-step": 300, "released-recipe": 600}},
}
STEPS = ("tests", "train-resume", "sample", "eval", "torchrun", "critic-step-paper", "critic-step-small-asinh",
         "released-recipe")
RELEASE_CARD = ROOT / "checkpoints" / "generator.json"  # first-cv0
CLASSES = ("FRI", "FRII", "Compact", "Bent")


class Check:
    """Runs commands for the steps: output appended to the log, a time limit per step."""

    def __init__(self, args):
        self.args, self.size = args, SIZES["smoke" if args.smoke else "full"]
        self.out, self.runs = args.out, args.runs
        self.bin = Path(sys.executable).parent
        self.env = {**os.environ, "RADIOGAN_TEST_DEVICE": args.device, "PYTHONPATH": str(ROOT)}

    def limit(self, step: str) -> int:
        return self.size["limits"]["critic-step" if step.startswith("critic-step") else step]

    def run(self, step: str, argv: list[str]) -> subprocess.CompletedProcess:
        """One command; a non-zero exit or the step's time limit raises with the output's tail."""
        with (self.out / "log.txt").open("a") as log:
            log.write(f"\n$ {shlex.join(argv)}\n")
            log.flush()
            result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                                    timeout=self.limit(step))
            log.write(result.stdout + result.stderr)
        if result.returncode:
            raise RuntimeError(f"exit {result.returncode}: {(result.stdout + result.stderr)[-1500:]}")
        return result

    def fresh(self, name: str) -> Path:
        """A step's output (a run folder or a file), removed: a step runs again only when it did
        not finish, and then from the start."""
        path = self.runs / name
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        return path

    def tool(self, name: str) -> str:
        return str(self.bin / name)

    def train(self, step: str, run_dir: Path, iters: int, *extra: str) -> float:
        start = time.perf_counter()
        self.run(step, [self.tool("wgan-train"), "--iters", str(iters), "--checkpoint-every", str(max(1, iters // 3)),
                        "--sample-every", str(iters), "--device", self.args.device, "--run-dir", str(run_dir),
                        "--no-progress", *extra])
        return time.perf_counter() - start


def final_state(run_dir: Path) -> dict:
    return checkpoint.load(checkpoint.list_checkpoints(run_dir)[-1], checkpoint.TRAINING_STATE)


def step_tests(c: Check) -> dict:
    result = c.run("tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda",
                             "tests/test_cuda.py"])
    return {"summary": result.stdout.strip().splitlines()[-1]}


def step_train_resume(c: Check) -> dict:
    iters = c.size["iters"]
    full, part = c.fresh("straight"), c.fresh("resumed")
    straight_s = c.train("train-resume", full, iters)
    first_s = c.train("train-resume", part, 2 * iters // 3)
    second_s = c.train("train-resume", part, iters, "--resume", "auto")
    differ = differences(final_state(full), final_state(part))
    stats = [json.loads(line) for line in (full / "stats.jsonl").read_text().splitlines()]
    config = json.loads((full / "config.json").read_text())
    return {"ok": not differ, "iters": iters, "amp_bf16": config["amp"], "preset": config["preset"],
            "straight_s": round(straight_s, 1), "resumed_s": round(first_s + second_s, 1),
            "img_per_s": stats[-1].get("Speed/img_per_s"), "bit_exact": not differ, "differing": differ[:10]}


def step_sample(c: Check) -> dict:
    n, out = c.size["n_sample"], c.fresh("samples.npz")
    start = time.perf_counter()
    c.run("sample", [c.tool("wgan-sample"), "--checkpoint", str(c.runs / "straight" / "generator.pt"), "--n", str(n),
                     "--out", str(out), "--device", c.args.device, "--no-progress"])
    return {"n": n, "img_per_s_with_startup": round(n / (time.perf_counter() - start), 1)}


def step_eval(c: Check) -> dict:
    out = c.fresh("eval")
    c.run("eval", [c.tool("wgan-eval"), "--checkpoint", str(c.runs / "straight" / "generator.pt"),
                   "--n-per-class", str(c.size["n_per_class"]), "--out", str(out), "--device", c.args.device,
                   "--no-progress"])
    scores = json.loads((out / "scores.json").read_text())
    return {"n_per_class": c.size["n_per_class"], "fid": {k: round(scores["scores"][k]["fid"], 2) for k in CLASSES}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step_torchrun(c: Check) -> dict:
    run_dir, iters = c.fresh("torchrun"), c.size["iters"] // 3
    result = c.run("torchrun", [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
                                "--master-port", str(free_port()), c.tool("wgan-train"), "--iters", str(iters),
                                "--device", c.args.device, "--run-dir", str(run_dir), "--no-progress"])
    done, printed_once = final_state(run_dir)["step"], result.stderr.count("run directory:") == 1
    return {"ok": done == iters and printed_once, "iterations": done, "backend": "nccl" if c.args.device.startswith("cuda") else "gloo",
            "printed_once": printed_once}


def critic_step(preset: str):
    def step(c: Check) -> dict:
        result = c.run(f"critic-step-{preset}", [sys.executable, "bench/critic_step.py", "--preset", preset,
                                                 "--steps", str(c.size["critic_steps"])])
        return json.loads(result.stdout)
    return step


def step_released_recipe(c: Check) -> dict:
    """The command on first-cv0's card, on this device; scored as releases are, at matched size."""
    card = json.loads(RELEASE_CARD.read_text())
    argv = shlex.split(card["command"].replace("OMP_NUM_THREADS=1 ", ""))[1:]
    run_dir = c.fresh("released-recipe")
    argv[argv.index("--run-dir") + 1] = str(run_dir)
    if c.size["released_iters"]:  # smoke: the same command, a few iterations long
        argv[argv.index("--iters") + 1] = str(c.size["released_iters"])
        argv[argv.index("--eval-every") + 1] = str(c.size["released_iters"] // 2)
        argv[argv.index("--eval-n") + 1] = str(c.size["n_per_class"])
    start = time.perf_counter()
    c.run("released-recipe", [c.tool("wgan-train"), *argv, "--device", c.args.device, "--no-progress"])
    train_s = time.perf_counter() - start
    out = run_dir / "release-eval"
    c.run("released-recipe", [c.tool("wgan-eval"), "--checkpoint", str(run_dir / "generator-best.pt"),
                              "--n-per-class", str(c.size["n_per_class"]), "--tstr-epochs", "30", "--out", str(out),
                              "--device", c.args.device, "--no-progress"])
    mine = json.loads((out / "scores.json").read_text())["matched"]
    return {"command": card["command"], "train_s": round(train_s, 1), "train_minutes": round(train_s / 60, 2),
            "matched": {k: {"fid_ratio": round(mine[k]["fid_ratio"], 3), "verdict": mine[k]["verdict"],
                            "release_fid_ratio": round(card["matched"][k]["fid_ratio"], 3),
                            "release_verdict": card["matched"][k]["verdict"]} for k in CLASSES}}


RUNNERS = {"tests": step_tests, "train-resume": step_train_resume, "sample": step_sample, "eval": step_eval,
           "torchrun": step_torchrun, "critic-step-paper": critic_step("paper"),
           "critic-step-small-asinh": critic_step("small-asinh"), "released-recipe": step_released_recipe}


def machine(device: torch.device) -> dict:
    cuda = device.type == "cuda"
    return {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
            "cuda": torch.version.cuda if cuda else None, "cpu": platform.processor() or platform.machine(),
            "cpu_flags": cpu_flags(), "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, from: " + ", ".join(STEPS))
    parser.add_argument("--smoke", action="store_true", help="toy sizes: check this script, e.g. on the CPU")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "gpu_check")
    args = parser.parse_args()
    steps = args.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    try:
        device = select_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    check = Check(args)
    for step in (s for s in STEPS if s in steps):
        path = args.out / f"{step}.json"
        if path.exists() and json.loads(path.read_text()).get("ok"):
            print(f"{step}: done earlier", flush=True)
            continue
        start = time.perf_counter()
        try:
            result = RUNNERS[step](check)
            record = {"ok": result.pop("ok", True), "result": result}
        except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as error:
            record = {"ok": False, "error": str(error)[-1500:]}
        record = {"step": step, "seconds": round(time.perf_counter() - start, 1), "smoke": args.smoke, **record}
        path.write_text(json.dumps(record, indent=2))
        print(f"{step}: {'ok' if record['ok'] else 'FAILED'} in {record['seconds']} s", flush=True)
    records = [json.loads(p.read_text()) for s in STEPS if (p := args.out / f"{s}.json").exists()]
    summary = {"benchmark": "gpu_check", "machine": machine(device), "steps": records}
    (args.out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({r["step"]: r["ok"] for r in records}))
    sys.exit(0 if all(r["ok"] for r in records) else 1)


if __name__ == "__main__":
    main()
