"""checkpoints/registry.json: every released generator and classifier, and the current best.

Each entry: id, kind (generator | classifier), file, sha256, parent id, command, data, date and
metrics; a generator promoted by `augment-cml --promote` also holds `gate` (the metrics its gates
measured, the best it was compared with, the date). `best` maps a kind to the id of its current
best entry, and `generator-cv<k>` to the generator released for cross-validation fold k
(trained on that fold's training split only), which `augment-eval` uses for fold k by default. Relative `file` paths are relative to the
registry's own folder, so the registry and its files can move together (they are installed as
package data). Every change rewrites the whole file through a temporary file and a rename, so an
interrupted write leaves the old registry, and holds an exclusive lock on `registry.json.lock`
beside it from reading to renaming, so two releases registered at once both land (without it the
later rename would silently drop the earlier entry).

Released generators are also known by name: `first-cv<k>` is cv fold k's generator, and
`first-cv<k>-s<seed>` its replica trained with another seed (`generator-cv<k>-s<seed>` in `best`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

from wgan.atomic import write_text
from wgan.data.cache import file_digest
from wgan.workdir import taking_turns

FORMAT = "radiogan-registry"
KINDS = ("generator", "classifier")


class RegistryError(ValueError):
    pass


def load(path: Path) -> dict:
    """The registry at `path`; an empty one when the file does not exist yet."""
    if not path.exists():
        return {"format": FORMAT, "version": 1, "entries": [], "best": {}}
    try:
        registry = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RegistryError(f"{path}: not a JSON registry ({error})") from None
    if registry.get("format") != FORMAT:
        raise RegistryError(f"{path}: not a {FORMAT} file")
    return registry


def entry(registry: dict, entry_id: str) -> dict:
    for item in registry["entries"]:
        if item["id"] == entry_id:
            return item
    raise RegistryError(f"no registry entry '{entry_id}'")


def best(registry: dict, kind: str) -> dict | None:
    """The current best entry of a kind, or None."""
    entry_id = registry["best"].get(kind)
    return entry(registry, entry_id) if entry_id else None


def fold_key(fold: int, seed: int = 0) -> str:
    """The registry's key of cv fold `fold`'s generator trained with seed `seed`: the fold's
    release (seed 0, `first-cv<k>`) or one of its replicas (`first-cv<k>-s<seed>`), which studies
    use to sample generator variation (augment-eval --checkpoint first-cv{fold}-s{seed})."""
    return f"generator-cv{fold}" if seed == 0 else f"generator-cv{fold}-s{seed}"


def fold_generators(path: Path, folds: list[int]) -> dict[int, Path]:
    """fold -> the generator export released for that fold; RegistryError naming missing folds."""
    registry = load(path)
    missing = [f for f in folds if fold_key(f) not in registry["best"]]
    if missing:
        raise RegistryError(f"{path}: no generator released for fold {', '.join(map(str, missing))}; train one with "
                            "`wgan-train --split cv --fold K` and register it (docs/guide/quality.md: the per-fold generators), "
                            "or pass --checkpoint to use one generator for every fold")
    return {fold: entry_file(path, entry(registry, registry["best"][fold_key(fold)])) for fold in folds}


def fold_release(registry: dict, data: dict) -> str | None:
    """The id of the generator released for the cv fold a generator was trained on, if any."""
    return registry["best"].get(fold_key(data.get("fold"))) if data.get("split") == "cv" else None


def entry_file(path: Path, item: dict) -> Path:
    """The file of a registry entry, checked against its recorded SHA-256."""
    file = Path(item["file"])
    file = file if file.is_absolute() else path.resolve().parent / file
    if not file.is_file() or file_digest(file) != item["sha256"]:
        raise RegistryError(f"{file}: {'missing' if not file.is_file() else 'not the file registered'} as "
                            f"{item['id']}; restore it or register the new file")
    return file


# first-cv<k>: the newest release of fold k; -s<seed>: its replica of that training seed;
# @<hex>: one release forever, by (a prefix of at least 8 digits of) its SHA-256
NAME = re.compile(r"first-cv(\d+)(?:-s(\d+))?(?:@([0-9a-f]+))?$")
PIN_DIGITS = 12  # the digits a pinned name records (an entry id's); 8 are enough to name one


def resolve(path: Path, name: str) -> Path | None:
    """The file of a released generator named `first-cv<k>` (`first-cv<k>-s0` alike: the fold's
    newest release), a replica `first-cv<k>-s<seed>`, one pinned release `first-cv<k>[-s<seed>]@<hash>`,
    or a registry id; None when `name` is none of these (the caller then treats it as a path)."""
    registry = load(path)
    match = NAME.match(name)
    if match:
        fold, seed, pin = int(match.group(1)), int(match.group(2) or 0), match.group(3)
        if pin is not None:
            return entry_file(path, _pinned(registry, name, fold, seed, pin))
        key = fold_key(fold, seed)
        if key not in registry["best"]:
            raise RegistryError(f"no released generator named {name}; released: {', '.join(names(registry))}")
        return entry_file(path, entry(registry, registry["best"][key]))
    if any(item["id"] == name for item in registry["entries"]):
        return entry_file(path, entry(registry, name))
    return None


def _pinned(registry: dict, name: str, fold: int, seed: int, pin: str) -> dict:
    if len(pin) < 8:
        raise RegistryError(f"{name}: a pinned name needs at least 8 hex digits of the release's SHA-256")
    releases = [item for item in registry["entries"] if _release_of(item) == (fold, seed)]
    found = [item for item in releases if item["sha256"].startswith(pin)]
    if len(found) != 1:
        known = ", ".join(pinned(item) for item in releases) or "none"
        raise RegistryError(f"no release {name}{' (ambiguous)' if found else ''}; releases of "
                            f"{name.partition('@')[0]}: {known}")
    return found[0]


def _release_of(item: dict) -> tuple[int, int] | None:
    """(fold, training seed) of a generator trained on a cv fold, else None. Entries registered
    before they recorded the seed name it in their command (`--seed N`; none: seed 0)."""
    data = item.get("data") or {}
    if item.get("kind") != "generator" or data.get("split") != "cv":
        return None
    seed = item.get("seed")
    if seed is None:
        found = re.search(r"--seed[ =](\d+)", item.get("command", ""))
        seed = int(found.group(1)) if found else 0
    return int(data["fold"]), int(seed)


def pinned(item: dict) -> str:
    """The name that pins a released per-fold generator for good: first-cv<k>[-s<seed>]@<hash>."""
    fold, seed = _release_of(item)
    return f"first-cv{fold}{f'-s{seed}' if seed else ''}@{item['sha256'][:PIN_DIGITS]}"


def pinned_name(path: Path, sha256: str) -> str | None:
    """The pinned name of the per-fold generator release with this SHA-256 in the registry at
    `path`, or None when it is not one (a user's own export, a composite)."""
    for item in load(path)["entries"]:
        if item["sha256"] == sha256 and _release_of(item) is not None:
            return pinned(item)
    return None


def names(registry: dict) -> list[str]:
    """The `first-cv<k>` (and replicas' `first-cv<k>-s<seed>`) names of the released per-fold generators."""
    return sorted(f"first-cv{key[len('generator-cv'):]}" for key in registry["best"] if key.startswith("generator-cv"))


def gate_metrics(item: dict | None) -> dict | None:
    """The augment-cml metrics a generator was promoted with: what the gates compare a new one
    against. Entries promoted before they were kept apart (under `gate`) hold them as `metrics`."""
    if item is None:
        return None
    return item["gate"]["metrics"] if "gate" in item else item["metrics"]


def _new_entry(path: Path, kind: str, file: str, sha256: str, command: str, data: dict, metrics: dict,
               parent: str | None, seed: int | None = None) -> dict:
    if kind not in KINDS:
        raise RegistryError(f"unknown kind '{kind}'; expected {' or '.join(KINDS)}")
    if not Path(file).is_absolute():  # stored relative to the registry's folder
        file = os.path.relpath(Path(file).resolve(), path.resolve().parent)
    new = {"id": f"{kind}-{sha256[:12]}", "kind": kind, "file": file, "sha256": sha256, "parent": parent,
           "command": command, "data": data, "date": datetime.date.today().isoformat(), "metrics": metrics}
    if seed is not None:  # a generator's training seed: which replica of its fold it is (pinned names)
        new["seed"] = seed
    return new


def _lock(path: Path):
    # the registry itself is replaced by a rename, so the lock is a file beside it
    return taking_turns(path.with_name(path.name + ".lock"))


def add(path: Path, kind: str, file: str, sha256: str, command: str, data: dict, metrics: dict,
        parent: str | None = None, promote: bool = False, fold_default: bool = False, seed: int = 0) -> dict:
    """Append an entry (id: kind-<first 12 hex of sha256>) and optionally make it the best (and,
    for a generator of a cv fold, that fold's default: its release when trained with seed 0, its
    replica of that seed otherwise); an entry with the same id is replaced, keeping the
    augment-cml metrics it was promoted with."""
    new = _new_entry(path, kind, file, sha256, command, data, metrics, parent, seed if kind == "generator" else None)
    with _lock(path):
        registry = load(path)
        old = next((e for e in registry["entries"] if e["id"] == new["id"]), {})
        if "gate" in old:
            new["gate"] = old["gate"]
        registry["entries"] = [e for e in registry["entries"] if e["id"] != new["id"]] + [new]
        if promote:
            registry["best"][kind] = new["id"]
        if fold_default:
            if kind != "generator" or data.get("split") != "cv":
                raise RegistryError("only a generator trained on a cross-validation fold can be a fold's default")
            registry["best"][fold_key(data["fold"], seed)] = new["id"]
        write_text(path, json.dumps(registry, indent=2))
    return new


def promote_generator(path: Path, file: str, sha256: str, command: str, data: dict, gate: dict,
                      over: str | None) -> dict:
    """Make a generator that passed augment-cml the best, with the gate's metrics and the best it
    was compared with (`over`) under its entry's `gate`. A generator registered before (a fold's
    release) keeps its entry, command and metrics: promotion once replaced the entry and lost the
    release card's scores."""
    with _lock(path):
        registry = load(path)
        item = next((e for e in registry["entries"] if e["id"] == f"generator-{sha256[:12]}"), None)
        if item is None:
            item = _new_entry(path, "generator", file, sha256, command, data, {}, over)
            registry["entries"].append(item)
        item["gate"] = {"metrics": gate, "over": over, "date": datetime.date.today().isoformat()}
        registry["best"]["generator"] = item["id"]
        write_text(path, json.dumps(registry, indent=2))
    return item


def register_card(path: Path, card_file: Path, promote: bool = False, fold_default: bool = False) -> dict:
    """Register a released classifier (card of `radiogan-release classifier`; `promote` makes it
    the best) or generator (card of `radiogan-release generator`; `fold_default` makes it its cv
    fold's default for augment-eval, `first-cv<k>`, or for a generator trained with another seed
    its replica `first-cv<k>-s<seed>`). `augment-cml --promote` is the way a generator becomes the
    best: it records the metrics the gates compare."""
    card = json.loads(card_file.read_text())
    file = str(card_file.with_name(card["file"]))
    if "generator_iterations" in card:
        if promote:
            raise RegistryError("a generator becomes the best through augment-cml --promote, which records its gates")
        metrics = {k: card.get(k) for k in ("scores", "floor", "astro", "class_fidelity")}
        return add(path, "generator", file, card["sha256"], card["command"], card["data"], metrics,
                   fold_default=fold_default, seed=card.get("seed", 0))
    if fold_default:
        raise RegistryError("only a generator can be a fold's default")
    return add(path, "classifier", file, card["sha256"], card["command"], card["data"],
               {"test": card["test"], "model": card["model"]}, promote=promote)
