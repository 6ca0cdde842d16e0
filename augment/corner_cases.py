"""A named, versioned list of difficult test sources, built from the data, and the tracking of
each case's prediction from one model version to the next.

Kinds of case:
- `baseline-wrong`: the real-only baseline gets the image wrong in most folds;
- `blank`: an image with no source pixel at all (the FIRST cv test set holds one);
- `faint`: the fewest activated (non-zero) pixels, the lowest `faint_quantile` of the test set;
- `outside-crop`: more than `outside_fraction` of the source's flux lies outside the centre
  crop the networks see (measured on the full 300 px cutout).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from wgan.data import CLASS_NAMES, DataConfig, ImageSet, load_dataset

from .shared_cells import read_cells

FORMAT = "radiogan-corner-cases"


def _case_id(index: int, image: np.ndarray) -> str:
    """Index in the test split plus a hash of the pixels, so a changed data set is noticed."""
    return f"test-{index:04d}-{hashlib.blake2b(image.tobytes(), digest_size=4).hexdigest()}"


def outside_crop_fraction(full: np.ndarray, crop: int) -> np.ndarray:
    """Per image, the share of summed intensity outside the centre crop x crop."""
    size = full.shape[-1]
    lo = (size - crop) // 2
    total = full.reshape(len(full), -1).sum(1).astype(np.float64)
    inside = full[:, lo : lo + crop, lo : lo + crop].reshape(len(full), -1).sum(1)
    return np.where(total > 0, 1 - inside / np.maximum(total, 1), 0.0)


def build(test: ImageSet, full_test: ImageSet, crop: int, baseline_predicted: list[list[int]], version: int = 1,
          faint_quantile: float = 0.05, outside_fraction: float = 0.3) -> dict:
    """The case list. `baseline_predicted` holds one prediction list per baseline model (fold)."""
    images = test.images.numpy()
    labels = test.labels.numpy()
    wrong = (np.asarray(baseline_predicted) != labels[None]).sum(0) if baseline_predicted else np.zeros(len(labels))
    activated = (images.reshape(len(images), -1) > 0).sum(1)
    faint_limit = np.quantile(activated[activated > 0], faint_quantile)
    outside = outside_crop_fraction(full_test.images.numpy(), crop)
    kinds = {
        "baseline-wrong": wrong * 2 > len(baseline_predicted),
        "blank": activated == 0,
        "faint": (activated > 0) & (activated <= faint_limit),
        "outside-crop": outside > outside_fraction,
    }
    cases = []
    for i in np.flatnonzero(np.any(list(kinds.values()), axis=0)):
        cases.append({"id": _case_id(int(i), images[i]), "index": int(i), "label": test.class_names[labels[i]],
                      "kinds": [k for k, mask in kinds.items() if mask[i]],
                      "activated_pixels": int(activated[i]), "flux_outside_crop": round(float(outside[i]), 4),
                      "baseline_wrong_folds": int(wrong[i])})
    return {"format": FORMAT, "version": version, "test_fingerprint": test.fingerprint,
            "class_names": list(test.class_names),
            "rules": {"baseline_models": len(baseline_predicted), "faint_max_activated_pixels": float(faint_limit),
                      "outside_fraction": outside_fraction, "crop": crop},
            "counts": {k: int(m.sum()) for k, m in kinds.items()}, "cases": cases}


def build_for(test_data: DataConfig, baseline_predicted: list[list[int]], version: int = 1) -> dict:
    """The case list for the test split `test_data` describes (its crop is the one the networks
    see; the full cutouts are loaded for the flux outside it)."""
    test = load_dataset(replace(test_data, subset="test"))
    full = load_dataset(replace(test_data, subset="test", crop=None, resolution=None))
    return build(test, full, test_data.crop, baseline_predicted, version=version)


def check_matches(cases: dict, test: ImageSet, name: str) -> None:
    """ValueError unless every case names the image it was built on: same class list, and at each
    case's index an image with the case's label and pixel hash. The images themselves decide, not
    the recorded fingerprint, which also changes when only the cache key's format does (a list
    refused for that reason once made every `augment-cml` run on FIRST fail)."""
    names = cases.get("class_names", CLASS_NAMES)
    if list(names) != list(test.class_names):
        raise ValueError(f"{name}: built for classes {', '.join(names)}, the test set has "
                         f"{', '.join(test.class_names)}")
    images, labels = test.images.numpy(), test.labels.numpy()
    for case in cases["cases"]:
        i = case["index"]
        if i >= len(images) or _case_id(i, images[i]) != case["id"] or names[labels[i]] != case["label"]:
            raise ValueError(f"{name}: case {case['id']} is not in this test set ({len(images)} images); "
                             "it was built for another data set, crop or resolution; rebuild it with "
                             "`augment-tools corner-cases`")


def outcomes(cases: dict, predicted: list[int]) -> dict[str, bool]:
    """case id -> predicted correctly, for one model's predictions on the whole test split."""
    names = cases.get("class_names", CLASS_NAMES)  # lists written before class names were recorded are FIRST's
    return {c["id"]: names[predicted[c["index"]]] == c["label"] for c in cases["cases"]}


def flips(before: dict[str, bool], after: dict[str, bool]) -> list[str]:
    """Cases right before and wrong after (the ones a gate fails on)."""
    return sorted(case for case, ok in before.items() if ok and not after.get(case, False))


def _sweep_data(sweep: Path) -> dict:
    """The data settings of an augment-eval folder: its sweep.json, or for a folder kept without
    it (the committed studies keep results.json, report and cells) the config in results.json."""
    for name, read in (("sweep.json", lambda d: d["data"]), ("results.json", lambda d: d["config"]["data"])):
        if (sweep / name).is_file():
            return read(json.loads((sweep / name).read_text()))
    raise ValueError(f"{sweep}: neither sweep.json nor results.json (not an augment-eval --out folder)")


def from_sweep(sweep: Path, version: int = 1) -> dict:
    """The case list from the real-only (r=0) cells of an `augment-eval` folder: one baseline
    prediction list per fold and seed (`augment-tools corner-cases`)."""
    cells = read_cells(sweep, "r=0")
    if not cells:
        raise ValueError(f"{sweep}: no real-only cells (cells/r=0/*.json)")
    data = DataConfig(**_sweep_data(sweep))
    cases = build_for(data, [c["test"]["predicted"] for c in cells], version=version)
    if cells[0]["data_fingerprints"]["test"] != cases["test_fingerprint"]:
        raise ValueError(f"{sweep}: cells were tested on another test set than {cases['test_fingerprint']}")
    return cases
