"""Shared fixtures: the real market data the tests read, committed under tests/fixtures/market."""

from __future__ import annotations

from pathlib import Path

import pytest

MARKET_DIR = Path(__file__).resolve().parent / "fixtures" / "market"


@pytest.fixture(scope="session")
def market_dir() -> Path:
    """Trimmed real Bybit files (see the README beside them); never a directory outside the tree."""
    return MARKET_DIR
