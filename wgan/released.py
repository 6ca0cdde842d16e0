"""Where the released models live, and how a generator is found by name.

They are installed with the package (`radiogan_models`, the repository's `checkpoints/`
folder), so every command finds them from any working directory: the released generator of cv
fold k is `first-cv<k>` (`checkpoints/registry.json` maps the names to files).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .registry import resolve


def _models_folder() -> Path:
    spec = importlib.util.find_spec("radiogan_models")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    return Path("checkpoints")  # running from a source tree that is not installed


CHECKPOINTS = _models_folder()
GENERATOR = CHECKPOINTS / "generator.pt"  # the released generator of cv fold 0 (first-cv0)
EXTRACTOR = CHECKPOINTS / "extractor.pt"  # the frozen classifier whose features the quality scores use
REGISTRY = CHECKPOINTS / "registry.json"  # every release, and each cv fold's generator
CORNER_CASES = CHECKPOINTS / "corner_cases.json"  # the difficult test sources augment-cml tracks


def find_generator(name_or_path: str | Path) -> Path:
    """An existing file as given; else a released generator's name (`first-cv2`) or registry id;
    else the path as given (loading it then reports that it is missing)."""
    path = Path(name_or_path)
    if path.exists() or not REGISTRY.is_file():
        return path
    return resolve(REGISTRY, str(name_or_path)) or path
