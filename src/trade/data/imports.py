"""`trade data import`: turn files into validated series, then write them all in one transaction.

Every file is read and validated before the store is opened for writing, so a bad file (or a crash)
leaves the store exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..timeframes import canonical
from .bars import Bars
from .files import infer_names, read_funding, read_mark, read_ohlcv
from .store import MarketStore

KINDS = ("ohlcv", "funding", "mark")


@dataclass(frozen=True)
class Loaded:
    """One validated file, ready to write."""

    path: Path
    kind: str
    symbol: str
    source: str
    bars: Bars | None = None  # ohlcv and mark
    funding: tuple[np.ndarray, np.ndarray] | None = None  # (ts, rate)

    @property
    def rows(self) -> int:
        return len(self.bars) if self.bars is not None else len(self.funding[0])  # type: ignore[index]


def read_import(
    path: Path,
    *,
    symbol: str | None = None,
    tf: str | None = None,
    kind: str | None = None,
    exchange: str | None = None,
) -> Loaded:
    """Read and validate one file; explicit options win over names inferred from the file name."""
    ex, sym, k, t = infer_names(path)
    sym, t = symbol or sym, tf or t
    k = kind or k or ("ohlcv" if tf else None)
    if sym is None or k is None:
        raise InputError(
            f"{path}: cannot infer symbol/kind from the name "
            "(expected <exchange>_<SYMBOL>_<tf>.csv.gz); pass --symbol, --tf and --kind"
        )
    if k not in KINDS:
        raise InputError(f"--kind {k!r}: expected one of {', '.join(KINDS)}")
    source = exchange or ex or "import"
    if k == "funding":
        return Loaded(path, k, sym, source, funding=read_funding(path))
    if t is None:
        raise InputError(f"{path}: pass --tf for {k} data")
    t = canonical(t)
    reader = read_ohlcv if k == "ohlcv" else read_mark
    return Loaded(path, k, sym, source, bars=reader(path, t, sym))


def import_files(db: Path, loaded: list[Loaded]) -> None:
    """Write every loaded file into the store at `db` in one transaction."""
    with MarketStore(db) as store, store._transaction():
        for item in loaded:
            if item.bars is not None and item.kind == "ohlcv":
                store._insert_ohlcv(item.bars, None, item.source)
            elif item.bars is not None:
                store._insert_mark(item.bars, item.source)
            else:
                assert item.funding is not None
                store._insert_funding(item.symbol, *item.funding, item.source)
