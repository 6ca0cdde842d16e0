"""Write files so that a reader never sees a half-written one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class WriteError(OSError):
    """A file could not be written (e.g. a full disk); its message names the file and what was kept."""

    def __str__(self) -> str:
        return self.args[0]


def reason(error: BaseException) -> str:
    """The short cause of a failed write: the OS's words, else the first line of the message."""
    return getattr(error, "strerror", None) or str(error).strip().splitlines()[0]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On any exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
