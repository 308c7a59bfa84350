"""How a run was made, recorded in result.json so it can be read back and repeated.

`trade backtest rerun RUN_DIR` runs the Play text kept beside the result (play.yml, checked against
the recorded hash) with the recorded `--set` values, window, data source, intrabar policy and mode;
the same trades fingerprint means the same trades to the last digit.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np

from .. import __version__
from ..report.artifacts import iso
from ..timeframes import TIMEFRAMES
from .market import MarketWindow

PLAY_COPY = "play.yml"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _span(ts: np.ndarray) -> dict[str, Any]:
    """Row count and first / last open time of one series (warmup history included)."""
    out: dict[str, Any] = {"rows": len(ts)}
    if len(ts):
        out["first"], out["last"] = iso(int(ts[0])), iso(int(ts[-1]))
    return out


def data_summary(
    window: MarketWindow, source: str, db: str | None, synthetic: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Where the bars came from and how many of each timeframe the run loaded."""
    tfs = sorted(window.bars, key=TIMEFRAMES.get)  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "source": source,
        "store": db,
        "synthetic": dict(synthetic) if synthetic else None,
        "timeframes": {tf: _span(window.bars[tf].ts) for tf in tfs},
        "intrabar_bars": _span(window.intrabar.ts_open),
        "intrabar_fallback_bars": int(window.intrabar.fallbacks),
        "funding_rates": _span(window.funding_ts),
        "mark_bars": _span(window.mark.ts) if window.mark is not None else {"rows": 0},
    }
    return out


def versions() -> dict[str, str]:
    return {
        "trade": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
    }


def provenance(
    *,
    command: Sequence[str] | None,
    play_text: str,
    play_file: str,
    overrides: Mapping[str, str] | None,
    variables: Mapping[str, Any],
    resolved_play: Mapping[str, Any],
    request: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The `provenance` block of result.json."""
    return {
        "command": list(command) if command is not None else None,
        "play_file": play_file,
        "play_sha256": sha256_text(play_text),
        "overrides": dict(overrides or {}),
        "variables": dict(variables),
        "play": dict(resolved_play),
        "request": dict(request),
        "data": dict(data),
        "versions": versions(),
    }
