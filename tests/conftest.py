import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """Keep every test's preprocessed-data cache out of the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("radiogan-cache")
    previous = os.environ.get("RADIOGAN_CACHE")
    os.environ["RADIOGAN_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("RADIOGAN_CACHE", None)
    else:
        os.environ["RADIOGAN_CACHE"] = previous
