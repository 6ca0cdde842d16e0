"""checkpoints/registry.json: every released generator and classifier, and the current best.

Each entry: id, kind (generator | classifier), file, sha256, parent id, command, data, date and
metrics. `best` maps a kind to the id of its current best entry. Every change rewrites the whole
file through a temporary file and a rename, so an interrupted write leaves the old registry.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from wgan.atomic import write_text

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


def add(path: Path, kind: str, file: str, sha256: str, command: str, data: dict, metrics: dict,
        parent: str | None = None, promote: bool = False) -> dict:
    """Append an entry (id: kind-<first 12 hex of sha256>) and optionally make it the best; an
    entry with the same id is replaced. Returns the entry."""
    if kind not in KINDS:
        raise RegistryError(f"unknown kind '{kind}'; expected {' or '.join(KINDS)}")
    registry = load(path)
    new = {"id": f"{kind}-{sha256[:12]}", "kind": kind, "file": file, "sha256": sha256, "parent": parent,
           "command": command, "data": data, "date": datetime.date.today().isoformat(), "metrics": metrics}
    registry["entries"] = [e for e in registry["entries"] if e["id"] != new["id"]] + [new]
    if promote:
        registry["best"][kind] = new["id"]
    write_text(path, json.dumps(registry, indent=2))
    return new


def main() -> None:
    """python -m augment.registry CARD.json [--registry checkpoints/registry.json] [--promote]

    registers a released classifier from its card (written by `python -m classifier.release`);
    generators enter the registry through `augment-cml --promote`, which records the metrics the
    gates compare."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("card", type=Path)
    parser.add_argument("--registry", type=Path, default=Path("checkpoints/registry.json"))
    parser.add_argument("--promote", action="store_true")
    args = parser.parse_args()
    card = json.loads(args.card.read_text())
    file = str(args.card.with_name(card["file"]))
    new = add(args.registry, "classifier", file, card["sha256"], card["command"], card["data"],
              {"test": card["test"], "model": card["model"]}, promote=args.promote)
    print(f"registered {new['id']} in {args.registry}")


if __name__ == "__main__":
    main()
