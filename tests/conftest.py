import os

import pytest
import torch

from vidattn.core.identity import cache_path

# under pytest-xdist (``make test`` runs one worker per core) each worker keeps to one thread
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def records_dir(tmp_path, monkeypatch):
    """An empty result store for the test."""
    d = tmp_path / "records"
    monkeypatch.setenv("VIDATTN_RECORDS_DIR", str(d))
    monkeypatch.delenv("VIDATTN_RETRAIN", raising=False)
    return d


@pytest.fixture
def data_folder(tmp_path, monkeypatch):
    """An empty data folder (suite, backbone and checkpoint caches) for the test."""
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


# the longest tests (whole chapters on real files, torchrun, the GPU check script) start first, so
# the xdist workers do not end on one long test while the other idles
LONG_FIRST = ("test_full_path.py", "test_book.py", "test_premise.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)


def stage1_file(module, config: dict) -> "os.PathLike":
    """Where experiment ``module``'s stage-1 cache for ``config`` lives (its ``STAGE1`` and fields)."""
    return cache_path(module.STAGE1, {k: config.get(k) for k in module.STAGE1_FIELDS}, "cpu", ".pt")
