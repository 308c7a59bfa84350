"""As-of alignment: a value is visible only once its bar has closed; feeds never shift each other."""

import numpy as np

from trade.engine.asof import asof_index, take_asof
from trade.timeframes import DAY_MS, HOUR_MS, MINUTE_MS

M15 = 15 * MINUTE_MS


def test_daily_value_changes_exactly_at_its_close():
    days = np.array([0, DAY_MS, 2 * DAY_MS], dtype=np.int64)
    daily_value = np.array([10.0, 20.0, 30.0])
    # 15m exec closes around the end of day 1 (which closes at 2 * DAY_MS)
    instants = np.array([2 * DAY_MS - M15, 2 * DAY_MS, 2 * DAY_MS + M15], dtype=np.int64)
    got = take_asof(daily_value, asof_index(days, DAY_MS, instants))
    # before the close: day 0's value; at the 23:45-00:00 bar's close: day 1's value
    assert got.tolist() == [10.0, 20.0, 20.0]


def test_offset_reads_bars_back_in_the_feeds_own_timeframe():
    hours = np.arange(5, dtype=np.int64) * HOUR_MS
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    instants = np.array([3 * HOUR_MS + M15, 3 * HOUR_MS], dtype=np.int64)
    idx = asof_index(hours, HOUR_MS, instants)
    assert take_asof(values, idx, 0).tolist() == [3.0, 3.0]
    assert take_asof(values, idx, 1).tolist() == [2.0, 2.0]
    assert np.isnan(take_asof(values, idx, 3)).tolist() == [True, True]


def test_nothing_visible_before_the_first_close():
    hours = np.array([HOUR_MS], dtype=np.int64)
    idx = asof_index(hours, HOUR_MS, np.array([HOUR_MS + M15, 2 * HOUR_MS], dtype=np.int64))
    assert idx.tolist() == [-1, 0]
    assert np.isnan(take_asof(np.array([7.0]), idx)[0])


def test_gap_in_one_feed_shifts_no_other_feed():
    instants = np.arange(1, 9, dtype=np.int64) * HOUR_MS
    full = np.arange(8, dtype=np.int64) * HOUR_MS
    gappy = np.delete(full, [3, 4])  # hours 3 and 4 missing
    a = take_asof(np.arange(8.0), asof_index(full, HOUR_MS, instants))
    b = take_asof(np.delete(np.arange(8.0), [3, 4]), asof_index(gappy, HOUR_MS, instants))
    assert a.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # during the gap the last closed bar stays visible; after it, values line up again by time
    assert b.tolist() == [0, 1, 2, 2, 2, 5, 6, 7]
