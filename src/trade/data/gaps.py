"""Gap detection: which bar open times a stored series is missing.

Pure functions on sorted int64 open times, shared by `trade data gaps`, `heal`, `status` and sync.
"""

from __future__ import annotations

import numpy as np

from ..timeframes import tf_ms


def find_gaps(ts: np.ndarray, tf: str) -> list[tuple[int, int]]:
    """Missing (first, last) open times between consecutive bars of `ts` (sorted, unique)."""
    step = tf_ms(tf)
    ts = np.asarray(ts, dtype=np.int64)
    idx = np.flatnonzero(np.diff(ts) != step)
    return [(int(ts[i]) + step, int(ts[i + 1]) - step) for i in idx]


def missing_ranges(
    ts: np.ndarray, tf: str, start_ms: int | None, end_ms: int | None
) -> list[tuple[int, int]]:
    """Missing (first, last) open times of the bars that should open in [start, end).

    Without a bound the series' own first/last bar is the bound, so only interior gaps count; with
    one, a missing head or tail counts too. Bounds are rounded inwards to the timeframe's grid."""
    step = tf_ms(tf)
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) == 0:
        if start_ms is None or end_ms is None:
            return []
        lo, hi = -(-start_ms // step) * step, -(-end_ms // step) * step - step
        return [(lo, hi)] if hi >= lo else []
    out = []
    if start_ms is not None:
        lo = -(-start_ms // step) * step
        if lo < ts[0]:
            out.append((lo, int(ts[0]) - step))
    out += find_gaps(ts, tf)
    if end_ms is not None:
        hi = -(-end_ms // step) * step - step  # last open time inside [.., end)
        if hi > ts[-1]:
            out.append((int(ts[-1]) + step, hi))
    return out


def count_missing(ranges: list[tuple[int, int]], tf: str) -> int:
    step = tf_ms(tf)
    return sum((b - a) // step + 1 for a, b in ranges)
