"""On-disk cache of preprocessed arrays, keyed by a hash of everything that made them.

Each entry also stores a digest of its own arrays; an entry that is damaged, incomplete or
altered fails that check and is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

# Bump when the preprocessing code changes what it produces, so old entries are not reused.
CACHE_FORMAT = 2  # 2: entries carry DIGEST_NAME
DIGEST_NAME = "__digest__"


def cache_dir() -> Path:
    """$RADIOGAN_CACHE, else $XDG_CACHE_HOME/radiogan, else ~/.cache/radiogan."""
    if os.environ.get("RADIOGAN_CACHE"):
        return Path(os.environ["RADIOGAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "radiogan"


def entries() -> list[Path]:
    """Every file the cache holds: preprocessed arrays (`<key>.npz`) and the split files drawn for
    users' own data sets (`splits/`), which a later command draws again, identically."""
    folder = cache_dir()
    return sorted([*folder.glob("*.npz"), *folder.glob("splits/*.json")]) if folder.is_dir() else []


def clear() -> tuple[int, int]:
    """Remove every entry (a command that needs one rebuilds it); returns (files, bytes) removed."""
    removed = [(path, path.stat().st_size) for path in entries()]
    for path, _ in removed:
        path.unlink(missing_ok=True)
    return len(removed), sum(size for _, size in removed)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(parts: dict) -> str:
    """Stable short hash of a JSON-serialisable description."""
    text = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}:".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load(key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays for `key`, or None when absent, unreadable, incomplete or altered (then rebuilt)."""
    path = cache_dir() / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError):
        return None
    stored = arrays.pop(DIGEST_NAME, None)
    if stored is None or str(stored) != arrays_digest(arrays):
        return None
    return arrays


def save(key: str, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write the arrays for `key`; a cache that cannot be written is skipped."""
    try:
        with atomic_path(cache_dir() / f"{key}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays, **{DIGEST_NAME: np.array(arrays_digest(arrays))})
    except OSError:
        pass  # a read-only cache directory only costs speed
