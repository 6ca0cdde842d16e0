"""Checkpoint files: plain state dicts plus metadata, loaded with weights_only=True.

Two artifacts, as in most GAN trainers: a full training state (for resume) and a
generator export (EMA weights + network config, what wgan-sample reads). Training states and
run exports are torch files; releases are safetensors files (`wgan.safefile`), and the older
`.pt` releases load as before.
Both are written to a temporary file and renamed, so a crash never leaves half a file, and
both carry a SHA-256 digest of their whole content, checked on every load, so a file damaged
on disk or in transfer is refused instead of sampling or training from altered weights.
A released file from before digests (the extractor) is checked against the SHA-256 that the
registry beside it records instead.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import torch

from . import safefile
from .atomic import WriteError, atomic_path, reason
from .data.cache import file_digest

TRAINING_STATE = "radiogan-training-state"
GENERATOR_EXPORT = "radiogan-generator"
CLASSIFIER_EXPORT = "radiogan-classifier"
KINDS = (TRAINING_STATE, GENERATOR_EXPORT, CLASSIFIER_EXPORT)
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged, or not of the expected kind."""


class CheckpointWriteError(WriteError):
    """A checkpoint could not be written (e.g. a full disk); the file it would replace is intact."""


def save(payload: dict, path: str | Path) -> None:
    """Atomically write a checkpoint dict (tensors, numbers, strings, lists, dicts only) with its
    digest: a torch file, or for a path ending in .safetensors a safetensors file (releases)."""
    payload = {k: v for k, v in payload.items() if k != "digest"}
    as_safetensors = safefile.is_safetensors(path)
    if as_safetensors:  # its plain fields go through JSON: digest what reading will give back
        payload = {**safefile.plain(payload), **{k: payload[k] for k in safefile.TENSOR_FIELDS if k in payload}}
    payload["digest"] = content_digest(payload)
    try:
        with atomic_path(path) as tmp:
            if as_safetensors:
                safefile.write(payload, tmp)
            else:
                torch.save(payload, tmp)
    except (OSError, RuntimeError) as error:  # torch reports a failed write as RuntimeError
        kept = "the previous file is intact" if Path(path).exists() else "nothing was written"
        raise CheckpointWriteError(f"{path}: could not be written ({reason(error)}); {kept}") from None


def content_digest(value) -> str:
    """SHA-256 over every key, number, string and tensor (dtype, shape and bytes) in a fixed order."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor:{flat.dtype}:{tuple(value.shape)}:".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"dict:{len(value)}:".encode())
        for key in sorted(value, key=repr):  # int and str keys (optimizer states) sort together by repr
            digest.update(f"{key!r}=".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"list:{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def load(path: str | Path, kind: str) -> dict:
    """Load a checkpoint of the given kind safely, with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        if safefile.is_safetensors(path):  # no pickle at all: tensors and a JSON header
            payload = safefile.read(path)
        else:
            with warnings.catch_warnings():  # a damaged file makes torch warn before it fails; the error says it all
                warnings.simplefilter("ignore")
                payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any failure to parse the file is the file's fault, never a traceback
        why = str(error) if safefile.is_safetensors(path) else _why_unreadable(path, error)
        raise CheckpointError(f"{path}: {why}; it cannot be used "
                              "(restore it from a copy, or use an older checkpoint of the run)") from None
    if not isinstance(payload, dict) or payload.get("format") not in KINDS:
        raise CheckpointError(f"{path}: not a radiogan checkpoint")
    if payload["format"] != kind:
        raise CheckpointError(f"{path}: is a {payload['format']} file, expected a {kind} file")
    if not isinstance(payload.get("version", 0), int) or payload.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {payload['version']} is newer than this radiogan supports; "
                              "upgrade radiogan to read it")
    _check_digest(path, payload)
    return payload


def _why_unreadable(path: Path, error: Exception) -> str:
    """What is wrong with a file torch.load refused, without passing on torch's advice to load
    unsafely (a file of unknown origin must never be unpickled)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head != b"PK\x03\x04":
        return "not a PyTorch checkpoint file (it is not a zip archive)"
    text = str(error)
    if "weights_only" in text or "Unsupported global" in text or "Unpickler" in text:
        return ("damaged, or holds Python objects other than tensors and plain values (radiogan never "
                "writes those, and will not unpickle them)")
    return "truncated or damaged (its archive cannot be read)"


def _check_digest(path: Path, payload: dict) -> None:
    stored = payload.pop("digest", None)
    if stored is None:
        registered = _registered_sha256(path)
        if registered is not None:
            if file_digest(path) != registered:
                raise CheckpointError(f"{path}: damaged: its SHA-256 is not the one {path.parent / 'registry.json'} "
                                      "records for it; restore it from a copy (e.g. git checkout)")
            return
        print(f"note: {path} has no content digest (written before digests were added); "
              "it cannot be checked for damage", file=sys.stderr)
    elif stored != content_digest(payload):
        raise CheckpointError(f"{path}: damaged: its content does not match the digest stored in it; "
                              "restore it from a copy, or use an older checkpoint of the run")


def _registered_sha256(path: Path) -> str | None:
    """The SHA-256 that the registry in the file's folder records for it (a released file), or None."""
    from .registry import RegistryError, load  # here, not at the top: the registry is a layer above

    registry = path.parent / "registry.json"
    if not registry.is_file():
        return None
    try:
        entries = load(registry)["entries"]
    except (OSError, RegistryError):
        return None  # not a registry: the file is not a release
    return next((item["sha256"] for item in entries if (path.parent / item["file"]).resolve() == path.resolve()), None)


def file_hash(path: str | Path) -> str:
    """Short SHA-256 of a file, used to name the generator in outputs."""
    return file_digest(path)[:16]


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"training-state-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Training-state checkpoints of a run, oldest first."""
    return sorted((run_dir / "checkpoints").glob("training-state-*.pt"))


def prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` training-state checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
