"""Resampling: lower-timeframe bars → a higher timeframe, UTC-aligned, complete buckets only.

Days start at 00:00 UTC and weeks on Monday 00:00 UTC. A bucket is emitted only when every lower bar
it should contain is present at both ends, so a partial leading or trailing bucket never appears and
a higher bar never claims an open or close it did not have. Bars missing inside a bucket are skipped.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..timeframes import WEEK_OFFSET_MS, canonical, tf_ms
from .bars import Bars


def resample(bars: Bars, tf: str) -> Bars:
    """Aggregate `bars` into `tf` (open of first, max high, min low, close of last, summed volume)."""
    tf = canonical(tf)
    step, src = tf_ms(tf), bars.tf_ms
    if step % src or step < src:
        raise DataError(
            f"cannot resample {bars.timeframe} into {tf}: {tf} is not a multiple of {bars.timeframe}"
        )
    if step == src:
        return bars
    n = len(bars)
    if n == 0:
        return Bars.from_arrays(bars.symbol, tf, *(np.empty(0),) * 6)
    offset = WEEK_OFFSET_MS if tf == "W" else 0
    bucket = (bars.ts - offset) // step * step + offset
    starts = np.flatnonzero(np.concatenate([[True], bucket[1:] != bucket[:-1]]))
    ends = np.concatenate([starts[1:], [n]])
    last_ts = bars.ts[ends - 1]
    # complete: the bucket's first and last lower bars are present (a bucket cut by the start or the
    # end of the data is never emitted; a missing bar inside a bucket does not drop it)
    complete = (last_ts + src == bucket[starts] + step) & (bars.ts[starts] == bucket[starts])
    o = bars.open[starts]
    h = np.maximum.reduceat(bars.high, starts)
    lo = np.minimum.reduceat(bars.low, starts)
    c = bars.close[ends - 1]
    v = np.add.reduceat(bars.volume, starts)
    keep = complete
    return Bars.from_arrays(
        bars.symbol, tf, bucket[starts][keep], o[keep], h[keep], lo[keep], c[keep], v[keep]
    )
