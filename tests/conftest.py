"""Shared fixtures: where the real market data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _market_dir() -> Path | None:
    candidates = [
        os.environ.get("TRADE_MARKET_DATA"),
        ROOT.parent / "shared" / "data" / "market",
        "/work/shared/data/market",
    ]
    for c in candidates:
        if c and (Path(c) / "MANIFEST.tsv").exists():
            return Path(c)
    return None


MARKET_DIR = _market_dir()


@pytest.fixture(scope="session")
def market_dir() -> Path:
    """The real Bybit/Binance data set (set TRADE_MARKET_DATA to point elsewhere)."""
    if MARKET_DIR is None:
        pytest.fail("real market data not found; set TRADE_MARKET_DATA to its directory")
    return MARKET_DIR
