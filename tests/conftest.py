"""Shared test fixtures."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _ptd_cache_dir(tmp_path_factory):
    """Cache PTD decompositions in a per-session folder: tests never read a user's cache, and share one another's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PTDSSM_CACHE_DIR", str(tmp_path_factory.mktemp("ptd-cache")))
    yield
    mp.undo()
