"""As-of alignment: which bar of a feed is visible at an evaluation instant.

A bar is visible at instant T only if it closed at or before T (`ts_open + tf_ms <= T`). Look-up is by
timestamp, never by index arithmetic between feeds, so a gap in one feed shifts no other feed.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def asof_index(ts_open: np.ndarray, tf_ms: int, instants: np.ndarray) -> np.ndarray:
    """Index of the last bar with `ts_close <= T` for each instant T (−1 when none has closed)."""
    return np.searchsorted(ts_open + tf_ms, instants, side="right").astype(np.int64) - 1


def take_asof(values: np.ndarray, index: np.ndarray, offset: int = 0) -> np.ndarray:
    """`values[index − offset]` with NaN where that bar does not exist (before the feed's start)."""
    j = index - offset
    out = np.full(len(index), np.nan)
    ok = j >= 0
    out[ok] = values[j[ok]]
    return out


@njit(cache=True)
def closes_are(ts_open: np.ndarray, tf_ms: int, first: int, instants: np.ndarray) -> bool:
    """Whether the bars from `first` on close exactly at `instants` (then the as-of index is a
    plain range and values can be read as a slice)."""
    if first < 0 or first + len(instants) > len(ts_open):
        return False
    for i in range(len(instants)):  # noqa: SIM110 (a jitted loop, not a generator)
        if ts_open[first + i] + tf_ms != instants[i]:
            return False
    return True
