"""Draw a split file for your own labelled set with another plan than the default (seed 0,
20 % test, 5 folds), then pass it to every command with `--splits`:

    python -m wgan.data.make_splits my_survey/ my_survey.splits.json --folds 10 --test-fraction 0.1 --seed 1

The file maps each image's content hash to "test" or its fold (wgan.data.splits); it can also be
edited by hand, e.g. to keep the sources of one sky region together.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import DataConfig, DataError, write_splits
from .splits import SplitPlan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="Class folder or .h5 file.")
    parser.add_argument("out", type=Path, help="New split file to write.")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.folds < 2 or not 0 < args.test_fraction < 1:
        parser.error("--folds must be >= 2 and --test-fraction in (0, 1)")
    try:
        split = write_splits(DataConfig(source=args.data, split="cv", crop=None),
                             SplitPlan(args.folds, args.test_fraction, args.seed), args.out)
    except (DataError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    places = list(split["images"].values())
    print(f"wrote {args.out}: {places.count('test')} test images, {args.folds} folds of the other {len(places) - places.count('test')}")


if __name__ == "__main__":
    main()
