"""Released models as safetensors files: tensors in the file, everything else as JSON in its header.

A `.safetensors` release is readable by any safetensors library (Python, Rust, JavaScript, C++)
without torch and without unpickling: the tensors of the payload's `state_dict` are stored under
`state_dict/<name>` (a per-class composite's under `members/<i>/<name>`), and the other payload
fields (format, version, the run config, class names, pixel scale, provenance, the content digest)
as one JSON document in the header's metadata under `radiogan`. Reading reverses this exactly, so
`wgan.checkpoint.load` checks the same digest whichever container a release came in.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

SUFFIX = ".safetensors"
META_KEY = "radiogan"
TENSOR_FIELDS = ("state_dict", "members")  # the payload fields that hold weights


def is_safetensors(path: str | Path) -> bool:
    return Path(path).suffix == SUFFIX


def plain(payload: dict) -> dict:
    """The payload's non-tensor fields as JSON gives them back (tuples as lists, numpy scalars as
    floats), so that the digest taken before writing is the digest computed after reading."""
    return json.loads(json.dumps({k: v for k, v in payload.items() if k not in TENSOR_FIELDS}))


def write(payload: dict, path: Path) -> None:
    """Write `payload` (plain fields, see `plain`, and its tensors) to `path`."""
    tensors = {}
    for name, value in (payload.get("state_dict") or {}).items():
        tensors[f"state_dict/{name}"] = value
    for i, member in enumerate(payload.get("members") or []):
        for name, value in member.items():
            tensors[f"members/{i}/{name}"] = value
    fields = {k: v for k, v in payload.items() if k not in TENSOR_FIELDS}
    fields["members"] = len(payload["members"]) if "members" in payload else None
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}  # no shared storage
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(fields)})


def read(path: Path) -> dict:
    """The payload of a `.safetensors` release; ValueError when the file is not one of ours."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"not a readable safetensors file ({error})") from None
    if META_KEY not in metadata:
        raise ValueError("a safetensors file without radiogan's metadata (not a radiogan release)")
    try:
        payload = json.loads(metadata[META_KEY])
    except json.JSONDecodeError:
        raise ValueError("its radiogan metadata is not JSON (damaged)") from None
    members = payload.pop("members", None)
    state = {name.split("/", 1)[1]: t for name, t in tensors.items() if name.startswith("state_dict/")}
    if state:
        payload["state_dict"] = state
    if members is not None:
        payload["members"] = [{name.split("/", 2)[2]: t for name, t in tensors.items()
                               if name.startswith(f"members/{i}/")} for i in range(int(members))]
    return payload
