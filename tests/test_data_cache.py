"""The on-disk cache of preprocessed arrays."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import wgan.data
from tests.data_helpers import (
    COUNTS,
    make_folder,
    npz_files,
    sample_image,
    write_png,
)
from wgan.data import (
    DataConfig,
    cache,
    load_dataset,
)

# ---------------------------------------------------------------------------------------------
# 3. The cache
# ---------------------------------------------------------------------------------------------


def counting(monkeypatch, name: str) -> list:
    """Replace reader `wgan.data.<name>` by a wrapper that records each call."""
    calls = []
    real = getattr(wgan.data, name)

    def reader(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(wgan.data, name, reader)
    return calls


def refuse(monkeypatch, name: str) -> None:
    def reader(path):
        raise AssertionError(f"{name}({path}) called: the cache was not used")

    monkeypatch.setattr(wgan.data, name, reader)


def test_first_second_load_is_served_from_cache(first, first_cache_dir, monkeypatch):
    before = first(split="cv", subset="test")
    assert (first_cache_dir / f"{before.fingerprint.split(':')[0]}.npz").is_file()
    refuse(monkeypatch, "read_first_zip")
    again = load_dataset(DataConfig(split="cv", subset="test", resolution=32))
    assert torch.equal(again.images, before.images) and torch.equal(again.labels, before.labels)
    assert np.array_equal(again.ra, before.ra) and np.array_equal(again.source, before.source)
    assert again.fingerprint == before.fingerprint


def test_folder_second_load_is_served_from_cache(tmp_path, cache_dir, monkeypatch):
    make_folder(tmp_path / "data")
    calls = counting(monkeypatch, "read_folder")
    first_load = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(calls) == 1 and len(npz_files(cache_dir)) == 1
    second = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(calls) == 1
    assert torch.equal(first_load.images, second.images)
    assert first_load.fingerprint == second.fingerprint


def test_cache_key_changes_with_crop_resolution_and_digest(tmp_path, cache_dir):
    root = tmp_path / "data"
    make_folder(root, size=16)

    def key(**kwargs) -> str:
        return load_dataset(DataConfig(source=str(root), subset="all", **kwargs)).fingerprint

    keys = {
        "whole": key(crop=None),
        "crop16": key(crop=16),  # same pixels as crop=None, but a different parameter
        "crop8": key(crop=8),
        "res8": key(crop=None, resolution=8),
        "crop8-res4": key(crop=8, resolution=4),
    }
    assert key(crop=None) == keys["whole"]
    write_png(root / "FRI" / "FRI_00.png", sample_image(99, 16))  # same name, new bytes
    keys["edited"] = key(crop=None)
    (root / "FRI" / "FRI_00.png").rename(root / "FRI" / "FRI_zz.png")  # same bytes, new name
    keys["renamed"] = key(crop=None)
    assert len(set(keys.values())) == len(keys), keys
    assert npz_files(cache_dir) == {f"{k}.npz" for k in keys.values()}


def test_first_cache_key_differs_between_zips(first):
    keys = {
        first(split="cv", subset="test").fingerprint.split(":")[0],
        first(subset="test").fingerprint.split(":")[0],
        first(split="cv", subset="test", resolution=None).fingerprint.split(":")[0],
    }
    assert len(keys) == 3


@pytest.mark.parametrize(
    "parts,other",
    [
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "b", "crop": 128, "resolution": 32},
        ),
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "a", "crop": 64, "resolution": 32},
        ),
        (
            {"digest": "a", "crop": 128, "resolution": 32},
            {"digest": "a", "crop": 128, "resolution": 64},
        ),
        (
            {"digest": "a", "crop": None, "resolution": None},
            {"digest": "a", "crop": 128, "resolution": None},
        ),
    ],
)
def test_cache_key_function(parts, other):
    assert cache.cache_key(parts) == cache.cache_key(dict(reversed(list(parts.items()))))
    assert cache.cache_key(parts) != cache.cache_key(other)


def rewritten(data: bytes, change) -> bytes:
    """A valid npz whose arrays were changed by `change(arrays)` (the stored digest kept as it was)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name].copy() for name in archive.files}
    change(arrays)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _flip_pixel(arrays):
    arrays["images"][0, 0, 0] ^= 1


CORRUPTIONS = {
    "missing-array": lambda data: rewritten(data, lambda arrays: arrays.pop("labels")),
    "altered-pixel": lambda data: rewritten(data, _flip_pixel),
    "no-digest": lambda data: rewritten(data, lambda arrays: arrays.pop(cache.DIGEST_NAME)),
    "garbage": lambda data: b"this is not an npz file" * 10,
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "zeroed-tail": lambda data: data[: len(data) // 2] + bytes(len(data) - len(data) // 2),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_cache_file_is_rebuilt(tmp_path, cache_dir, monkeypatch, corruption):
    make_folder(tmp_path / "data")
    config = DataConfig(source=str(tmp_path / "data"), crop=None)
    good = load_dataset(config)
    path = cache_dir / f"{good.fingerprint.split(':')[0]}.npz"
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    calls = counting(monkeypatch, "read_folder")
    rebuilt = load_dataset(config)
    assert len(calls) == 1
    assert torch.equal(rebuilt.images, good.images) and torch.equal(rebuilt.labels, good.labels)
    assert cache.load(good.fingerprint.split(":")[0]) is not None  # the entry was rewritten
    load_dataset(config)
    assert len(calls) == 1


def test_cache_writes_leave_no_temporary_files(tmp_path, cache_dir):
    make_folder(tmp_path / "data")
    for crop in (None, 8):
        load_dataset(DataConfig(source=str(tmp_path / "data"), crop=crop))
    assert len(npz_files(cache_dir)) == 2
    assert sorted(p.name for p in cache_dir.iterdir() if not p.name.endswith(".npz")) == []


@pytest.mark.parametrize("error", [OSError, RuntimeError])
def test_failed_cache_write_leaves_nothing(tmp_path, cache_dir, monkeypatch, error):
    make_folder(tmp_path / "data")

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise error("disk full")

    monkeypatch.setattr(cache.np, "savez", broken_savez)
    config = DataConfig(source=str(tmp_path / "data"), crop=None)
    if error is OSError:  # a cache that cannot be written only costs speed
        assert len(load_dataset(config)) == sum(COUNTS.values())
    else:
        with pytest.raises(error):
            load_dataset(config)
    assert list(cache_dir.iterdir()) == []


def test_unwritable_cache_dir_still_loads(tmp_path, monkeypatch):
    make_folder(tmp_path / "data")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("RADIOGAN_CACHE", str(blocker))
    data = load_dataset(DataConfig(source=str(tmp_path / "data"), crop=None))
    assert len(data) == sum(COUNTS.values())
