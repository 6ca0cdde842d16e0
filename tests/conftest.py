import collections
import os
from pathlib import Path

import pytest

import wgan.data
from wgan.data import DataConfig, load_dataset


def _session_variable(name: str, value: Path):
    """Set an environment variable for the whole session (subprocesses inherit it), then restore it."""
    previous = os.environ.get(name)
    os.environ[name] = str(value)
    yield value
    if previous is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = previous


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """Keep every test's preprocessed-data cache out of the user's ~/.cache."""
    yield from _session_variable("RADIOGAN_CACHE", tmp_path_factory.mktemp("radiogan-cache"))


@pytest.fixture(scope="session", autouse=True)
def user_registry(tmp_path_factory):
    """Keep every test's registrations out of the user's registry (tests that write one set their own)."""
    yield from _session_variable("RADIOGAN_REGISTRY", tmp_path_factory.mktemp("radiogan-data") / "registry.json")


@pytest.fixture(scope="session")
def first_cache_dir(session_cache) -> Path:
    """One cache directory for every FIRST load of the session (shared with the other tests)."""
    return session_cache


@pytest.fixture(scope="session")
def first_reads() -> collections.Counter:
    """How often each (zip, crop, resolution) was read from the wheel this session."""
    return collections.Counter()


@pytest.fixture
def first(first_cache_dir, first_reads, monkeypatch):
    """Load FIRST subsets through the session cache; fails if a zip is read twice for one
    preprocessing (the cache would then not be doing its job)."""
    monkeypatch.setenv("RADIOGAN_CACHE", str(first_cache_dir))
    real_reader = wgan.data.read_first_zip

    def load(crop: int | None = 128, resolution: int | None = 32, **kwargs):
        def counting_reader(path):
            first_reads[(Path(path).name, crop, resolution)] += 1
            return real_reader(path)

        with monkeypatch.context() as patch:
            patch.setattr(wgan.data, "read_first_zip", counting_reader)
            data = load_dataset(DataConfig(crop=crop, resolution=resolution, **kwargs))
        assert max(first_reads.values(), default=0) <= 1, first_reads
        return data

    return load


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty cache directory for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RADIOGAN_CACHE", str(folder))
    return folder


@pytest.fixture
def one_epoch_references_pass(monkeypatch):
    """A reference classifier trained for one epoch on FIRST calls every image one class, and the
    sweep refuses it (tests/test_health.py); tests about what the filter and the teacher do with a
    reference record the check instead (cells run in the test's process with one worker)."""
    checked = []
    monkeypatch.setattr("augment.filtering.refuse_collapsed", lambda report, *args, **kwargs: checked.append(report))
    return checked
