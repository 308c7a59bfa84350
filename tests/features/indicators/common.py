"""Shared helpers: three parameter sets per indicator and bars from the real data fixtures."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from trade.data.bars import Bars
from trade.features.indicators import INDICATORS
from trade.features.registry import default_catalog


def read_bars(path: Path, tf: str, symbol: str) -> Bars:
    with gzip.open(path, "rt") as fh:
        a = np.loadtxt(fh, delimiter=",", skiprows=1)
    return Bars.from_arrays(
        symbol, tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )


def param_sets(name: str) -> list[dict[str, Any]]:
    """Defaults, every integer param halved (≥ 2) and doubled: three valid sets per indicator."""
    spec = default_catalog().get(name)
    assert spec is not None
    out = [spec.resolve_params({})]
    for factor in (0.5, 2.0):
        raw = {}
        for p in spec.params:
            if p.type is int:
                raw[p.name] = max(int(p.default * factor), max(2, int(p.min or 1)))
        out.append(spec.resolve_params(raw))
    return out


def source_of(name: str) -> str | None:
    return "close" if INDICATORS[name].has_source else None
