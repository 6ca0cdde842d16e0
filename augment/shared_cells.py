"""Cells a study folder shares with another one, referenced instead of copied.

Studies that share arms (most share the real-only cells) reuse each other's finished cells
(`--reuse-from`), and the reuse copies them into the new folder. For study folders kept in a
repository, `share` replaces each copy that is byte-identical to the same cell of a folder the
study reused from by an entry in `cells/references.json`: the cell's name, the file it lives in
(relative to this `cells/` folder) and that file's SHA-256. Every reader of a study folder goes
through `cell_files`, which follows the references and refuses one whose file changed or went
missing (a silently different cell would be a different result).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from wgan.atomic import write_text

REFERENCES = "references.json"


def cell_files(folder: Path, arm: str | None = None) -> dict[str, Path]:
    """A study folder's cells ('r=0/fold0-seed3.json' -> the file holding it), its own files and
    the ones it references, optionally of one arm only."""
    cells_dir = folder / "cells"
    own = {p.relative_to(cells_dir).as_posix(): p for p in cells_dir.glob("*/fold*-seed*.json")}
    for name, entry in _references(folder).items():
        if name not in own:
            own[name] = _resolve(folder, name, entry)
    return {name: own[name] for name in sorted(own) if arm is None or name.split("/")[0] == arm}


def read_cells(folder: Path, arm: str | None = None) -> list[dict]:
    """The records of `cell_files(folder, arm)`, in name order."""
    return [json.loads(path.read_text()) for path in cell_files(folder, arm).values()]


def share(folder: Path, others: Iterable[Path]) -> int:
    """Reference each cell of `folder` that is byte-identical to the same cell of one of `others`
    (followed to the file that holds it) instead of keeping a copy; returns how many copies were
    removed. The references are written before any copy is removed, so a stop part-way loses
    nothing; a copy that differs from what a reference names is the folder's own cell, and the
    reference goes."""
    cells_dir = folder / "cells"
    references, removable = _references(folder), []
    elsewhere = [cell_files(Path(other)) for other in others]
    for path in sorted(cells_dir.glob("*/fold*-seed*.json")):
        name, content = path.relative_to(cells_dir).as_posix(), path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        # never a reference to the copy itself (another folder may refer back to this one)
        source = next((found for files in elsewhere
                       if (found := files.get(name)) is not None
                       and found.resolve() != path.resolve() and found.read_bytes() == content), None)
        if source is not None:
            references[name] = {"path": os.path.relpath(source.resolve(), cells_dir.resolve()), "sha256": digest}
        if name in references and references[name]["sha256"] == digest:
            removable.append(path)
        else:
            references.pop(name, None)
    if references or (cells_dir / REFERENCES).exists():
        write_text(cells_dir / REFERENCES, json.dumps(references, indent=2, sort_keys=True) + "\n")
    for path in removable:
        path.unlink()
    return len(removable)


def _references(folder: Path) -> dict[str, dict]:
    path = folder / "cells" / REFERENCES
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not readable as JSON ({error})") from None


def _resolve(folder: Path, name: str, entry: dict) -> Path:
    target = Path(os.path.normpath(folder / "cells" / entry["path"]))  # without the ../ steps
    where = f"{folder / 'cells' / REFERENCES}: cell {name} refers to {target}"
    if not target.is_file():
        raise ValueError(f"{where}, which is missing")
    if hashlib.sha256(target.read_bytes()).hexdigest() != entry["sha256"]:
        raise ValueError(f"{where}, which has changed since (SHA-256 differs)")
    return target
