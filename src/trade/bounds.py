"""Bounds of what a market value may be, shared by file imports and the exchange client: beyond
them a value is a unit mix-up or corruption, never data."""

FIRST_TS_MS = 946_684_800_000  # 2000-01-01: an exchange timestamp before this is in seconds
LAST_TS_MS = 4_102_444_800_000  # 2100-01-01: later "milliseconds" are µs or ns
MAX_PRICE = 1e12
MAX_VOLUME = 1e15
MAX_FUNDING_RATE = 1.0  # ±100 % per settlement
