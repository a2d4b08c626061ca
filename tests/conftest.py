"""Shared test fixtures: the reference data folder (never copied into the project), and no network."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Nothing may download at test time: the split-file fetcher fails as it does offline (the
    environment variable reaches the CLI subprocesses too)."""
    monkeypatch.setenv("BENCH_NO_DOWNLOAD", "1")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (the ../shared/data folder beside the checkout)")
    return SHARED_DATA
