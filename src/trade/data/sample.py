"""The bundled sample: BTCUSDT and ETHUSDT history shipped inside the package, so the default example
runs on a fresh machine with no network. Loaded into the store in one transaction on first use.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from ..instruments import InstrumentSpec
from .bars import Bars

if TYPE_CHECKING:
    from .store import MarketStore

SAMPLE_SYMBOLS = ("BTCUSDT", "ETHUSDT")
SAMPLE_MARKER = "sample"  # sync_meta kind recorded once the sample is in a store
# sync_meta kind recorded when the sample was loaded series by series, kept apart from the user's
# (a store filled by an earlier version may hold series where both were merged)
APART_MARKER = "sample_apart"
TIMEFRAMES = {"1m": "1m", "15m": "15m", "1h": "1h", "4h": "4h", "1d": "D"}


def _read(name: str) -> dict[str, np.ndarray]:
    ref = resources.files("trade") / "sample" / name
    with resources.as_file(ref) as path:
        table = pq.read_table(path)
    return {c: table.column(c).to_numpy() for c in table.column_names}


def load_sample(store: MarketStore) -> None:
    """Write every sample series into `store` (all or nothing). A series the user already holds is
    skipped whole, so the sample never fills the holes of a user's import or sync; a later user
    write into a sample series replaces it whole (`MarketStore._insert`)."""
    store.con.execute("BEGIN TRANSACTION")
    try:
        for sym in SAMPLE_SYMBOLS:
            for file_tf, tf in TIMEFRAMES.items():
                d = _read(f"ohlcv_{sym}_{file_tf}.parquet")
                bars = Bars.from_arrays(
                    sym, tf, d["ts_ms"], d["open"], d["high"], d["low"], d["close"], d["volume"]
                )
                store._insert_ohlcv(bars, None, "sample", replace=False)
            m = _read(f"mark_{sym}_1h.parquet")
            store._insert_mark(
                Bars.from_arrays(
                    sym,
                    "1h",
                    m["ts_ms"],
                    m["open"],
                    m["high"],
                    m["low"],
                    m["close"],
                    np.zeros(len(m["ts_ms"])),
                ),
                "sample",
                replace=False,
            )
            f = _read(f"funding_{sym}.parquet")
            store._insert_funding(sym, f["ts_ms"], f["funding_rate"], "sample", replace=False)
        for spec in sample_instruments():
            store._insert_instrument(spec, replace=False)
        for marker in (SAMPLE_MARKER, APART_MARKER):
            store.con.execute(
                "INSERT OR REPLACE INTO sync_meta VALUES ('*', ?, '', 'sample', epoch_ms(now()), 0)",
                [marker],
            )
        store.con.execute("COMMIT")
    except BaseException:
        store.con.execute("ROLLBACK")
        raise


def sample_instruments() -> list[InstrumentSpec]:
    """The specs of the sample's symbols (Bybit's filters for BTCUSDT and ETHUSDT)."""
    ins = _read("instruments.parquet")
    return [
        InstrumentSpec(
            symbol=str(ins["symbol"][i]),
            tick_size=float(ins["tick_size"][i]),
            qty_step=float(ins["qty_step"][i]),
            min_qty=float(ins["min_qty"][i]),
            min_notional=float(ins["min_notional"][i]),
            max_leverage=float(ins["max_leverage"][i]),
            maintenance_margin_rate=float(ins["maintenance_margin_rate"][i]),
            funding_interval_hours=float(ins["funding_interval_hours"][i]),
        )
        for i in range(len(ins["symbol"]))
    ]
