"""As-of alignment: which bar of a feed is visible at an evaluation instant.

A bar is visible at instant T only if it closed at or before T (`ts_open + tf_ms <= T`). Look-up is by
timestamp, never by index arithmetic between feeds, so a gap in one feed shifts no other feed.
"""

from __future__ import annotations

import numpy as np


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
