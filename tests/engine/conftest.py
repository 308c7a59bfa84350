"""Real bars for engine tests, read from the committed market data fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from trade.data.bars import Bars


def read_bars(path: Path, tf: str, symbol: str = "BTCUSDT") -> Bars:
    with gzip.open(path, "rt") as fh:
        a = np.loadtxt(fh, delimiter=",", skiprows=1)
    return Bars.from_arrays(
        symbol, tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )


@pytest.fixture(scope="session")
def btc_15m(market_dir: Path) -> Bars:
    return read_bars(market_dir / "bybit_BTCUSDT_15m.csv.gz", "15m")


@pytest.fixture(scope="session")
def btc_1m(market_dir: Path) -> Bars:
    return read_bars(market_dir / "bybit_BTCUSDT_1m.csv.gz", "1m")
