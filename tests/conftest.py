"""Shared test fixtures: the reference data folder (never copied into the project)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (the ../shared/data folder beside the checkout)")
    return SHARED_DATA
