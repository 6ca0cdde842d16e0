"""Cross-validation splits of a user's own labelled set, kept in a split file.

FIRST comes with its published folds. A user's class folder or HDF5 file gets them here: a
stratified test set and k stratified folds of the rest, drawn once with a seed and written to
a JSON file that maps each image's content hash to "test" or its fold. Every command given the
same data reads the same file, so the generator of fold k, the classifier of fold k and the
leakage check all see one split; a user can write or edit the file to supply their own.

Images are keyed by the hash of their pixels as read (before crop and resize), so the split
does not depend on preprocessing, file names or the order of the files. Identical images share
one hash and therefore always land in the same split: a duplicate can never sit in training
and test at once.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_text
from .imageset import DataError

FORMAT = "radiogan-splits/1"
TEST = "test"


@dataclass(frozen=True)
class SplitPlan:
    """How a new split file is drawn."""

    folds: int = 5
    test_fraction: float = 0.2
    seed: int = 0


def image_hash(image: np.ndarray) -> str:
    """Content hash of one image as read (uint8 pixels plus shape)."""
    array = np.ascontiguousarray(image)
    return hashlib.blake2b(f"{array.shape}".encode() + array.tobytes(), digest_size=16).hexdigest()


def default_path(cache_folder: Path, data_digest: str, plan: SplitPlan) -> Path:
    """Where the split of a data set is kept when the user names no file: one per data content and plan."""
    return cache_folder / "splits" / f"{data_digest[:24]}-k{plan.folds}-t{plan.test_fraction:g}-s{plan.seed}.json"


def draw(hashes: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], plan: SplitPlan) -> dict:
    """A new split: per class, round(test_fraction * n) distinct images (at least one) to the test
    set, the rest dealt in turn to the folds, in an order drawn with the plan's seed."""
    groups: dict[str, int] = {}
    for h, label in zip(hashes.tolist(), labels.tolist()):
        if groups.setdefault(h, label) != label:
            raise DataError(f"the same image appears under classes {class_names[groups[h]]} and {class_names[label]}")
    rng = np.random.default_rng(plan.seed)
    assignment: dict[str, str | int] = {}
    for c, name in enumerate(class_names):
        members = sorted(h for h, label in groups.items() if label == c)
        if len(members) < plan.folds + 1:
            raise DataError(f"class '{name}' has {len(members)} distinct images; a test set and {plan.folds} "
                            f"folds need at least {plan.folds + 1}")
        order = [members[i] for i in rng.permutation(len(members))]
        n_test = max(1, int(np.floor(plan.test_fraction * len(members) + 0.5)))
        n_test = min(n_test, len(members) - plan.folds)  # every fold keeps one image of the class
        for i, h in enumerate(order):
            assignment[h] = TEST if i < n_test else (i - n_test) % plan.folds
    return {"format": FORMAT, "folds": plan.folds, "test_fraction": plan.test_fraction, "seed": plan.seed,
            "class_names": list(class_names), "images": dict(sorted(assignment.items()))}


def load(path: Path) -> dict:
    """Read and check a split file; DataError naming the file and the problem."""
    try:
        split = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such split file") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable split file ({error})") from None
    if not isinstance(split, dict) or split.get("format") != FORMAT or not isinstance(split.get("images"), dict):
        raise DataError(f"{path}: not a split file (expected JSON with \"format\": \"{FORMAT}\" and \"images\")")
    folds = split.get("folds")
    if not isinstance(folds, int) or folds < 2:
        raise DataError(f"{path}: 'folds' must be an integer >= 2")
    for h, where in split["images"].items():
        if where != TEST and not (isinstance(where, int) and 0 <= where < folds):
            raise DataError(f"{path}: image {h} is assigned to {where!r}; expected \"test\" or a fold 0..{folds - 1}")
    return split


def ensure(path: Path, hashes: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], plan: SplitPlan) -> dict:
    """The split in `path`, drawn and written first when the file does not exist yet."""
    if not path.exists():
        write_text(path, json.dumps(draw(hashes, labels, class_names, plan), indent=1))
        # a new split decides which images every later run tests on: say so, and where it is kept
        print(f"drew a split of these {len(hashes)} images ({plan.folds} folds and a test set) into {path}; "
              "each run copies it into its folder as splits.json", file=sys.stderr)
    return load(path)


def assign(split: dict, hashes: np.ndarray, path: Path) -> np.ndarray:
    """Each image's place ("test" or the fold number as text); DataError when an image is missing
    from the file (it would otherwise silently join some split)."""
    images = split["images"]
    missing = [h for h in hashes.tolist() if h not in images]
    if missing:
        raise DataError(f"{path}: {len(missing)} of the {len(hashes)} images are not in this split file (e.g. "
                        f"{missing[0]}); the data changed since it was written: add them to the file, or pass "
                        "another --splits file to draw a new split")
    return np.asarray([str(images[h]) for h in hashes.tolist()])


def subset_mask(places: np.ndarray, subset: str, fold: int, folds: int) -> np.ndarray:
    """Which images form `subset` of cross-validation fold `fold`."""
    if not 0 <= fold < folds:
        raise DataError(f"fold {fold} out of range 0..{folds - 1} for this split file")
    if subset == TEST:
        return places == TEST
    if subset == "valid":
        return places == str(fold)
    if subset == "train":
        return (places != TEST) & (places != str(fold))
    raise DataError(f"subset '{subset}' is not defined for a cross-validation split; load train, valid or test")
