"""One table across several augmentation studies (e.g. the arms of a protocol diagnosis, each its
own `augment-eval --out` folder):

    python -m augment.compare published=runs/diag-published fixed-pool=runs/diag-fixed ... [--out table.md]

Every row is an arm of a study against that study's own real-only arm, paired by fold and seed,
with the 95 % interval; `*` marks an interval that excludes 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wgan.atomic import write_text

from .analysis import class_names
from .report import format_gain


def table(studies: dict[str, Path]) -> str:
    loaded = {label: json.loads((folder / "results.json").read_text()) for label, folder in studies.items()}
    names = class_names(next(iter(loaded.values()))["summary"])
    gain_keys = ["accuracy", *(f"{c}/f1" for c in names)]
    head = "| study | arm | pairs | accuracy | " + " | ".join(f"{c} gain" for c in ["accuracy", *names]) + " |"
    rows = [head, "|---|---|---|---|" + "---|" * len(gain_keys)]
    for label, results in loaded.items():
        summary, reference = results["summary"], results["reference_arm"]
        ref = summary[reference]["scores"]
        rows.append(f"| {label} | {reference} (real only) | {summary[reference]['n_runs']} | "
                    f"{ref['accuracy']['mean']:.3f} ± {ref['accuracy']['std']:.3f} | "
                    + " | ".join(f"(F1 {ref[k]['mean']:.3f})" if k != "accuracy" else "" for k in gain_keys) + " |")
        for arm, s in summary.items():
            if arm == reference:
                continue
            rows.append(f"| {label} | {arm} | {s['gain']['accuracy']['n']} | "
                        f"{s['scores']['accuracy']['mean']:.3f} ± {s['scores']['accuracy']['std']:.3f} | "
                        + " | ".join(format_gain(summary, arm, k) for k in gain_keys) + " |")
        failed = sum(len(s["failures"]) for s in summary.values())
        if failed or results.get("errors"):
            rows.append(f"| {label} | failed to learn: {failed}; errors: {len(results.get('errors', []))} | | | |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="+", help="LABEL=FOLDER of an augment-eval run")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    studies = {}
    for item in args.studies:
        label, sep, folder = item.partition("=")
        if not sep or not (Path(folder) / "results.json").is_file():
            parser.error(f"'{item}': expected LABEL=FOLDER with a results.json")
        studies[label] = Path(folder)
    text = table(studies)
    if args.out:
        write_text(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
