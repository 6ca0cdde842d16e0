"""Speed and memory of everything around training, side by side in one JSON document:

- `wgan-sample --n 1` cold start (a fresh process: imports + loading the generator);
- warm load of the full FIRST training split from the preprocessed cache;
- `wgan-sample --n N` per output format: images/s and the process's peak RSS (memory must stay
  flat in N: compare --n with --n-large);
- per-class quality scores of N generated images against the cached real statistics.

Run:  python bench/pipeline.py --checkpoint checkpoints/generator.pt --n 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

SAMPLE = [sys.executable, "-c", "from commands.wgan import sample_command; sample_command()"]


def child(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process, which must succeed."""
    script = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
              "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", script, *cmd], check=True, capture_output=True, text=True).stdout
    seconds, rss_kib = json.loads(out)
    return seconds, rss_kib / 1024


def cold_start(checkpoint: str, repeats: int) -> dict:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            seconds, _ = child([*SAMPLE, "--n", "1", "--checkpoint", checkpoint, "--out", f"{tmp}/{i}", "--no-progress"])
            times.append(seconds)
    return {"seconds_median": statistics.median(times), "seconds_all": times, "target_seconds": 3.0}


def warm_data_load(repeats: int) -> dict:
    from wgan.data import DataConfig, load_dataset

    config = DataConfig(split="cv", fold=0, resolution=64)
    load_dataset(config)  # fill the cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        load_dataset(config)
        times.append(time.perf_counter() - t)
    return {"seconds_median": statistics.median(times), "target_seconds": 0.5}


def sampling(checkpoint: str, n: int, formats: list[str], start_seconds: float) -> dict:
    """Per format: total seconds, images/s after the start-up (cold start subtracted), peak RSS."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            target = f"{tmp}/{fmt}" + {"npz": ".npz", "h5": ".h5"}.get(fmt, "")
            seconds, rss = child([*SAMPLE, "--n", str(n), "--checkpoint", checkpoint, "--format", fmt, "--out", target,
                                  "--no-progress"])
            out[fmt] = {"n": n, "seconds": seconds, "img_per_s_after_start": n / max(seconds - start_seconds, 1e-9),
                        "peak_rss_mib": rss, "peak_rss_target_mib": 1024}
    return out


def quality(checkpoint: str, n: int) -> dict:
    """Per-class scores for n generated images (n/4 per class); real statistics come from the cache."""
    import torch

    from classifier.evaluate_generator import GeneratorEvaluation, evaluate_generator
    from classifier.export import load_classifier
    from wgan import released
    from wgan.sampling import load_generator

    gen = load_generator(checkpoint)
    extractor = load_classifier(released.EXTRACTOR)
    evaluate_generator(gen, extractor, GeneratorEvaluation(8, 0, 4))  # warm: real features cached
    t = time.perf_counter()
    evaluate_generator(gen, extractor, GeneratorEvaluation(n // 4, 0, 100))
    return {"n": n, "seconds": time.perf_counter() - t, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="checkpoints/generator.pt")
    parser.add_argument("--n", type=int, default=10000, help="images per sampling format and for the quality scores")
    parser.add_argument("--n-large", type=int, default=100000, help="a second npz run, to show memory is flat in N")
    parser.add_argument("--formats", default="png,npz,h5,fits")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    formats = args.formats.split(",")
    start = cold_start(args.checkpoint, args.repeats)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "cold_start_wgan_sample_n1": start,
        "warm_data_load_cv_train_64px": warm_data_load(args.repeats),
        "sampling": sampling(args.checkpoint, args.n, formats, start["seconds_median"]),
        "sampling_large_npz": (sampling(args.checkpoint, args.n_large, ["npz"], start["seconds_median"])["npz"]
                               if args.n_large else None),
        "quality_scores": quality(args.checkpoint, args.n),
        "max_rss_this_process_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
