"""Where the released models live, and how a generator is found by name.

They are installed with the package (`radiogan_models`, the repository's `checkpoints/`
folder), so every command finds them from any working directory: the released generator of cv
fold k is `first-cv<k>` (`checkpoints/registry.json` maps the names to files). That packaged
registry is read-only: a user's own releases and promotions go to the user registry
(`$RADIOGAN_REGISTRY`, else `$XDG_DATA_HOME/radiogan/registry.json`, else
`~/.local/share/radiogan/registry.json`), which names are looked up in first.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from . import registry as _registry
from .registry import RegistryError, pinned_name, resolve


def _models_folder() -> Path:
    spec = importlib.util.find_spec("radiogan_models")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    return Path("checkpoints")  # running from a source tree that is not installed


CHECKPOINTS = _models_folder()
GENERATOR = CHECKPOINTS / "generator.pt"  # the released generator of cv fold 0 (first-cv0)
EXTRACTOR = CHECKPOINTS / "extractor.pt"  # the frozen classifier whose features the quality scores use
REGISTRY = CHECKPOINTS / "registry.json"  # the project's releases, and each cv fold's generator (read-only)
CORNER_CASES = CHECKPOINTS / "corner_cases.json"  # the difficult test sources augment-cml tracks


def user_registry() -> Path:
    """Where this user's releases and promotions are registered (read before the packaged one)."""
    if os.environ.get("RADIOGAN_REGISTRY"):
        return Path(os.environ["RADIOGAN_REGISTRY"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "radiogan" / "registry.json"


def registries(given: Path | None = None) -> list[Path]:
    """The registries a name is looked up in, first match winning: `given` alone when a command
    was given one, else the user's (when it exists) and then the packaged one."""
    if given is not None:
        return [Path(given)]
    return [path for path in (user_registry(), REGISTRY) if path.is_file()]


def find_generator(name_or_path: str | Path, registry: Path | None = None) -> Path:
    """An existing file as given; else a released generator's name (`first-cv2`, pinned
    `first-cv2@<hash>`) or registry id; else the path as given (loading it then reports that it
    is missing)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    errors = []
    for known in registries(registry):
        try:
            found = resolve(known, str(name_or_path))
        except RegistryError as error:  # perhaps another registry knows it
            errors.append(error)
            continue
        if found is not None:
            return found
    if errors:
        raise errors[-1]  # the packaged registry's answer lists the released names
    return path


def fold_generators(folds: list[int], registry: Path | None = None) -> dict[int, Path]:
    """fold -> the generator released for that cv fold, each from the first registry that has one
    (the user's own release of a fold before the project's); RegistryError naming missing folds."""
    found: dict[int, Path] = {}
    for known in reversed(registries(registry)):  # the packaged first, so the user's replace it
        loaded = _registry.load(known)
        for fold in folds:
            if _registry.fold_key(fold) in loaded["best"]:
                found[fold] = known
    missing = [fold for fold in folds if fold not in found]
    if missing:
        return _registry.fold_generators(registry or REGISTRY, folds)  # raises, naming the missing folds
    return {fold: _registry.fold_generators(found[fold], [fold])[fold] for fold in folds}


def bar_registry(registry: Path | None = None) -> Path:
    """The registry whose best generator a new one is gated against: `registry` when given, else
    the user's once it holds a promoted generator, else the packaged one."""
    if registry is not None:
        return Path(registry)
    for known in registries():
        if _registry.load(known)["best"].get("generator"):
            return known
    return REGISTRY


def release_name(sha256: str, registry: Path | None = None) -> str | None:
    """The pinned name (`first-cv<k>[-s<seed>]@<hash>`) of the release with this SHA-256, or None
    for a file that is not a per-fold release: what a result records of the generator it used."""
    for known in registries(registry):
        name = pinned_name(known, sha256)
        if name:
            return name
    return None


def writable(path: Path) -> Path:
    """`path` when a release may be registered there; the packaged registry inside an installed
    package is refused (it is replaced by the next install: register into the user registry)."""
    if any(part in ("site-packages", "dist-packages") for part in Path(path).resolve().parts):
        raise RegistryError(f"{path} is the installed package's registry, which is read-only; register into "
                            f"your own ({user_registry()}, the default) or pass --registry FILE")
    return Path(path)
