"""What loading a checkpoint must survive: a file written on a GPU machine, a file written before
format versions existed, torch's environment switch that turns unpickling back on, and the other
words other torch versions use when they refuse a pickled object."""

import zipfile

import pytest
import torch

from wgan import checkpoint


def small_checkpoint(path, **fields):
    checkpoint.save({"format": checkpoint.GENERATOR_EXPORT, "version": checkpoint.FORMAT_VERSION,
                     "state_dict": {"weight": torch.arange(6.0).reshape(2, 3)}, "kimg": 1.5, **fields}, path)
    return path


def as_if_written_on_cuda(path):
    """Rewrite the storage location torch records for each tensor ('cpu') as 'cuda:0', as a
    training state saved during GPU training has it; the tensors' bytes stay as they are."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    pickled = next(name for name, _ in entries if name.endswith("/data.pkl"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            if name == pickled:  # the location string (pickle protocol 2), memoised after its first use
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            archive.writestr(name, data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading without a GPU")
def test_a_checkpoint_written_on_a_gpu_loads_on_a_machine_without_one(tmp_path):
    """A run trained on a GPU box is resumed, sampled or scored on a laptop: its tensors are
    mapped to the CPU, with their digest intact."""
    path = small_checkpoint(tmp_path / "gpu.pt")
    as_if_written_on_cuda(path)
    with pytest.raises(RuntimeError, match="CUDA"):  # the file really names a CUDA device
        torch.load(path, weights_only=True)
    payload = checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
    assert payload["state_dict"]["weight"].device.type == "cpu"
    assert torch.equal(payload["state_dict"]["weight"], torch.arange(6.0).reshape(2, 3))


def test_torchs_switch_that_turns_unpickling_on_does_not_reach_checkpoints(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD (which torch's own error text suggests) makes torch.load
    unpickle wherever a caller leaves weights_only unset; checkpoints still never unpickle."""
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.GENERATOR_EXPORT, "version": 1, "obj": zipfile.Path}, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(checkpoint.CheckpointError, match="will not unpickle them"):
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)


def test_a_checkpoint_written_before_format_versions_loads_with_a_notice(tmp_path, capsys):
    payload = checkpoint.load(small_checkpoint(tmp_path / "new.pt"), checkpoint.GENERATOR_EXPORT)
    del payload["version"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)  # as written before versions (and digests) existed
    assert checkpoint.load(old, checkpoint.GENERATOR_EXPORT)["kimg"] == 1.5
    assert "has no content digest" in capsys.readouterr().err


REFUSED_PICKLE = ("damaged, or holds Python objects other than tensors and plain values (radiogan never writes "
                  "those, and will not unpickle them)")


@pytest.mark.parametrize("torch_says, explained", [
    ("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely succeed",
     REFUSED_PICKLE),
    ("Unsupported global: GLOBAL pathlib.PosixPath was not an allowed global by default", REFUSED_PICKLE),
    ("Unpickler error: Unsupported operand 149", REFUSED_PICKLE),
    ("PytorchStreamReader failed reading zip archive: failed finding central directory",
     "truncated or damaged (its archive cannot be read)"),
])
def test_each_wording_of_torchs_refusal_gets_the_same_explanation(tmp_path, monkeypatch, torch_says, explained):
    """Torch versions word a refused pickled object differently (the project supports >= 2.6);
    each is explained as one, and never with torch's advice to load unsafely."""
    path = small_checkpoint(tmp_path / "x.pt")

    def refuse(*args, **kwargs):
        raise RuntimeError(torch_says)

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(checkpoint.CheckpointError) as error:
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)
    assert str(error.value) == (f"{path}: {explained}; it cannot be used (restore it from a copy, or use an older "
                                "checkpoint of the run)")
