"""Timeframe names and their durations in milliseconds.

Time is int64 milliseconds UTC everywhere inside the system; a bar is keyed by its open time and
closes at `ts_open + tf_ms`. Daily bars open at 00:00 UTC; weekly bars open on Monday 00:00 UTC.
"""

from __future__ import annotations

from .errors import InputError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

#: Concrete timeframes a Play may use, in duration order.
TIMEFRAMES: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "D": DAY_MS,
    "W": WEEK_MS,
}

#: Spellings accepted on input and the canonical name they mean (file names use `1d`, Bybit uses `D`).
ALIASES: dict[str, str] = {
    "1d": "D",
    "1D": "D",
    "d": "D",
    "1w": "W",
    "1W": "W",
    "w": "W",
    "60m": "1h",
}

#: Epoch 1970-01-01 was a Thursday; weekly buckets start on Monday, 4 days later.
WEEK_OFFSET_MS = 4 * DAY_MS


def canonical(tf: str) -> str:
    """Return the canonical name of a timeframe or raise InputError naming the bad value."""
    name = ALIASES.get(tf, tf)
    if name not in TIMEFRAMES:
        raise InputError(f"unknown timeframe {tf!r}; expected one of {', '.join(TIMEFRAMES)}")
    return name


def tf_ms(tf: str) -> int:
    """Duration of a timeframe in milliseconds."""
    return TIMEFRAMES[canonical(tf)]


def bucket_start(ts_ms: int, tf: str) -> int:
    """Open time of the `tf` bucket that contains `ts_ms` (UTC-aligned; weeks start Monday)."""
    step = tf_ms(tf)
    offset = WEEK_OFFSET_MS if canonical(tf) == "W" else 0
    return ((ts_ms - offset) // step) * step + offset


def parse_duration(text: str) -> int:
    """Parse a duration such as `90m`, `2h`, `3d`, `1w` into milliseconds."""
    units = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": WEEK_MS}
    text = text.strip()
    if len(text) >= 2 and text[-1].lower() in units and text[:-1].isdigit() and int(text[:-1]) > 0:
        return int(text[:-1]) * units[text[-1].lower()]
    raise InputError(
        f"bad duration {text!r}; expected a positive number and a unit m/h/d/w, e.g. '2h'"
    )
