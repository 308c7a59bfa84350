"""A market store's whole contents, to prove a refused input changed nothing."""

from __future__ import annotations

from pathlib import Path

from trade.data import MarketStore, synthetic_market

TABLES = ("ohlcv", "funding", "mark", "instruments", "sync_meta")


def store_snapshot(db: Path, seed_bars: int = 600) -> list[str]:
    """Every table's rows; an empty store is first seeded with `seed_bars` synthetic bars, so a
    refusal has something to leave alone."""
    with MarketStore(db) as store:
        if not store.symbols():
            store.write_ohlcv(synthetic_market("range", seed_bars, 1, symbol="XUSDT"))
        return [
            repr(store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()) for t in TABLES
        ]
