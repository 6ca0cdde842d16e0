"""Checkpoints prove their integrity: a damaged file is refused by name, never loaded silently,
never a traceback, and no error advises loading unsafely."""

import json
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import synthetic_set, tiny_config
from wgan import checkpoint
from wgan.data.cache import file_digest
from wgan.sampling import load_generator
from wgan.training_loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("integrity")
    train(tiny_config(iters=2), synthetic_set(), run_dir, progress=False)
    return run_dir


def files(run: Path) -> dict[str, tuple[Path, str]]:
    return {"export": (run / "generator.pt", checkpoint.GENERATOR_EXPORT),
            "state": (checkpoint.list_checkpoints(run)[-1], checkpoint.TRAINING_STATE)}


def tensor_offsets(path: Path) -> list[int]:
    """Byte offsets in the file of the stored tensor data (torch's zip keeps it uncompressed)."""
    offsets = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/data/" in info.filename and info.file_size >= 16:
                with open(path, "rb") as handle:
                    handle.seek(info.header_offset + 26)
                    name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
                start = info.header_offset + 30 + name_len + extra_len
                offsets.append(start + info.file_size // 2)
    return offsets


@pytest.mark.parametrize("kind", ["export", "state"])
def test_a_byte_changed_inside_a_tensor_is_refused_as_damaged(run, kind, tmp_path):
    path, fmt = files(run)[kind]
    data = bytearray(path.read_bytes())
    offsets = tensor_offsets(path)
    assert offsets
    for offset in offsets[:5]:
        damaged = bytearray(data)
        damaged[offset] ^= 0x10
        target = tmp_path / path.name
        target.write_bytes(bytes(damaged))
        with pytest.raises(checkpoint.CheckpointError, match=f"{target.name}: damaged"):
            checkpoint.load(target, fmt)


@pytest.mark.parametrize("kind", ["export", "state"])
def test_any_single_byte_mutation_is_refused_or_harmless(run, kind, tmp_path_factory):
    path, fmt = files(run)[kind]
    original = path.read_bytes()
    reference = checkpoint.load(path, fmt)
    target = tmp_path_factory.mktemp("fuzz") / path.name

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(position=st.integers(0, len(original) - 1), value=st.integers(1, 255))
    def mutate(position, value):
        damaged = bytearray(original)
        damaged[position] ^= value
        target.write_bytes(bytes(damaged))
        try:
            payload = checkpoint.load(target, fmt)
        except checkpoint.CheckpointError as error:
            assert str(error).startswith(f"{target}: ") and "\n" not in str(error)
            assert "weights_only" not in str(error)
            return
        # It loaded: then the bytes changed were not content (zip padding, a timestamp, ...).
        assert checkpoint.content_digest(payload) == checkpoint.content_digest(reference)

    mutate()


def test_unsafe_pickle_error_never_advises_disabling_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.GENERATOR_EXPORT, "obj": Path("x")}, path)
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
    message = str(error.value)
    assert "weights_only" not in message and "Python objects" in message and "\n" not in message
    assert "will not unpickle" in message


UNUSABLE = "; it cannot be used (restore it from a copy, or use an older checkpoint of the run)"


@pytest.mark.parametrize("case, message", [
    ("not-zip", "not a PyTorch checkpoint file (it is not a zip archive)" + UNUSABLE),
    ("truncated", "truncated or damaged (its archive cannot be read)" + UNUSABLE),
    ("pickle", "damaged, or holds Python objects other than tensors and plain values (radiogan never writes those, "
               "and will not unpickle them)" + UNUSABLE),
    ("foreign", "not a radiogan checkpoint"),
    ("newer", f"format version {checkpoint.FORMAT_VERSION + 1} is newer than this radiogan supports; upgrade radiogan "
              "to read it"),
    ("classifier", "is a radiogan-classifier file, expected a radiogan-generator file"),
    ("edited", "damaged: its content does not match the digest stored in it; restore it from a copy, or use an older "
               "checkpoint of the run"),
])
def test_errors_say_what_is_wrong(run, tmp_path, case, message):
    """The whole message, word for word: it is all a user sees of what went wrong and what to do."""
    path = tmp_path / "x.pt"
    source = (run / "generator.pt").read_bytes()
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)
    if case == "not-zip":
        path.write_bytes(b"SIMPLE  =                    T" + b" " * 100)  # e.g. a FITS file
    elif case == "truncated":
        path.write_bytes(source[: len(source) // 2])
    elif case == "pickle":
        torch.save({"format": checkpoint.GENERATOR_EXPORT, "obj": Path("x")}, path)
    elif case == "foreign":
        torch.save({"model": torch.zeros(3)}, path)
    elif case == "edited":  # a tensor changed after the digest was computed
        payload["step"] += 1
        torch.save(payload | {"digest": checkpoint.content_digest({**payload, "step": payload["step"] - 1})}, path)
    else:
        if case == "newer":
            payload["version"] = checkpoint.FORMAT_VERSION + 1
        else:
            payload["format"] = checkpoint.CLASSIFIER_EXPORT
        checkpoint.save(payload, path)
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
    assert str(error.value) == f"{path}: {message}"


def test_files_without_a_digest_still_load_with_a_notice(run, tmp_path, capsys):
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)
    old = tmp_path / "old.pt"
    torch.save(payload, old)  # as written before digests existed
    assert load_generator(old).kimg == payload["kimg"]
    assert capsys.readouterr().err == (f"note: {old} has no content digest (written before digests were added); "
                                       "it cannot be checked for damage\n")


def test_a_released_file_without_a_digest_is_checked_against_the_registry(run, tmp_path, capsys):
    """The released extractor predates digests: the registry's SHA-256 stands in for one, so an
    altered copy is refused instead of giving silently different quality scores."""
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)
    released = tmp_path / "released"
    released.mkdir()
    old = released / "old.pt"
    torch.save(payload, old)
    entry = {"id": "generator-x", "kind": "generator", "file": "old.pt", "sha256": file_digest(old)}
    (released / "registry.json").write_text(json.dumps({"format": "radiogan-registry", "entries": [entry]}))
    assert load_generator(old).kimg == payload["kimg"]
    assert "no content digest" not in capsys.readouterr().err  # checked against the registry instead
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][key] = payload["state_dict"][key] + 1e-3  # one weight changed, still a valid file
    torch.save(payload, old)
    with pytest.raises(checkpoint.CheckpointError) as error:
        load_generator(old)
    assert str(error.value) == (f"{old}: damaged: its SHA-256 is not the one {released / 'registry.json'} records for "
                                "it; restore it from a copy (e.g. git checkout)")
    other = released / "other.pt"  # beside the released file, but not registered: nothing to check it against
    torch.save(checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT), other)
    assert load_generator(other).kimg == payload["kimg"]
    assert f"note: {other} has no content digest" in capsys.readouterr().err


def test_the_short_hash_that_names_a_generator_in_cells_is_the_first_16_hex_digits(tmp_path):
    """Cell identities, reuse and reports name generators by it: another length would orphan
    every committed cell."""
    path = tmp_path / "x.bin"
    path.write_bytes(b"radiogan")
    assert checkpoint.file_hash(path) == file_digest(path)[:16] and len(checkpoint.file_hash(path)) == 16


def test_a_payload_carrying_an_old_digest_is_saved_with_a_new_one(run, tmp_path):
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)
    payload["kimg"] = payload["kimg"] + 1
    checkpoint.save({**payload, "digest": "0" * 64}, tmp_path / "again.pt")  # e.g. read raw and edited
    assert checkpoint.load(tmp_path / "again.pt", checkpoint.GENERATOR_EXPORT)["kimg"] == payload["kimg"]


def test_a_failed_save_says_whether_the_previous_file_is_intact(run, tmp_path, monkeypatch):
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    target = tmp_path / "export.pt"
    with pytest.raises(checkpoint.CheckpointWriteError, match=rf"^{target}: could not be written "
                       r"\(No space left on device\); nothing was written$"):
        checkpoint.save(payload, target)
    target.write_bytes(b"previous")
    with pytest.raises(checkpoint.CheckpointWriteError, match="; the previous file is intact$"):
        checkpoint.save(payload, target)
    assert target.read_bytes() == b"previous"


def test_an_export_of_other_networks_is_refused_by_name_and_a_release_is_named(run, tmp_path):
    payload = checkpoint.load(run / "generator.pt", checkpoint.GENERATOR_EXPORT)
    payload["state_dict"] = {k: v for k, v in list(payload["state_dict"].items())[1:]}  # a layer missing
    checkpoint.save(payload, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match=r"other.pt: generator export does not match this network "
                       r"code \(Error\(s\) in loading state_dict"):
        load_generator(tmp_path / "other.pt")
    assert load_generator(run / "generator.pt").release is None  # not released
    from wgan import released

    assert load_generator(released.find_generator("first-cv0")).release.startswith("first-cv0")


def test_the_content_digest_is_a_fixed_function_of_the_content():
    """Every checkpoint written so far stores this digest; computing it any other way (another key
    order, another encoding) would call every existing file damaged. Optimizer states key their
    entries by int, sorted by repr (10 before 2) together with str keys."""
    value = {"state": {10: {"step": torch.tensor(3.0)}, 2: {"step": torch.tensor(1.0)}}, "name": "x",
             "w": torch.arange(4, dtype=torch.float32).reshape(2, 2), "list": [1, 2.5, "a", None, True]}
    assert checkpoint.content_digest(value) == "a2d1537daafdd3be855982314a0caca7c39b8335b9f521fef16dda395c95ccfa"
    assert checkpoint.content_digest({**value, "name": "y"}) != checkpoint.content_digest(value)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match=rf"^{tmp_path / 'none.pt'}: no such checkpoint file$"):
        checkpoint.load(tmp_path / "none.pt", checkpoint.GENERATOR_EXPORT)


def test_a_torch_file_that_is_not_a_checkpoint_dict_is_refused_by_name(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2), 1], path)  # a valid, safe torch file of another shape
    with pytest.raises(checkpoint.CheckpointError, match=f"^{path}: "):
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
