"""docs/execution.md and the simulator agree on every reason: each exit reason a trade can carry
and each rejection reason is documented, every documented one is one the code knows, and a golden
scenario produces each of them (the simulator refuses any reason outside its lists)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trade.errors import SimulationError
from trade.instruments import InstrumentSpec
from trade.sim import AccountConfig, Level, OrderRequest, SimulatedExchange, Sizing, Trailing
from trade.sim.orders import EXIT_REASONS, REJECT_REASONS

from .test_execution_rules import execution

DOC = (Path(__file__).resolve().parents[2] / "docs" / "execution.md").read_text()
M = 60_000
SPEC = InstrumentSpec("T", tick_size=0.01, qty_step=0.001, min_qty=0.01, min_notional=5.0)
BUY = OrderRequest(side="buy", qty=1.0)


def _table(heading: str) -> list[str]:
    """The first column of the table under `## heading`."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def sim(bars: list[tuple[float, ...]], **account: object) -> SimulatedExchange:
    """1m bars opening at 0, 1m, …; exec 1m; no slippage."""
    s = SimulatedExchange(
        SPEC, AccountConfig(starting_equity=10_000.0, slippage_bps=0.0, **account), exec_tf_ms=M
    )  # type: ignore[arg-type]
    a = np.array(bars, dtype=float)
    ts = np.arange(len(a), dtype=np.int64) * M
    s.load(ts, ts + M, a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    return s


FLAT = [(100.0, 100.0, 100.0, 100.0)] * 4


def _run(bars: list[tuple[float, ...]], *orders: tuple[int, OrderRequest], **acc: object):  # type: ignore[no-untyped-def]
    s = sim(bars, **acc)
    for t, req in orders:
        s.advance_to(t)
        s.submit(req, t)
    s.advance_to(len(bars) * M)
    return s


def _exits() -> dict[str, Callable[[], SimulatedExchange]]:
    down = [(100, 100, 100, 100), (100, 100, 97, 98), (98,) * 4]
    up = [(100, 100, 100, 100), (100, 103, 100, 102), (102,) * 4]
    return {
        "signal": lambda: _run(FLAT, (0, BUY), (M, OrderRequest(side="sell", reduce_only=True))),
        "take_profit": lambda: _run(
            up, (0, OrderRequest(side="buy", qty=1.0, take_profit=Level("percent", 2.0)))
        ),
        "stop_loss": lambda: _run(
            down, (0, OrderRequest(side="buy", qty=1.0, stop_loss=Level("percent", 2.0)))
        ),
        "trailing_stop": lambda: _run(
            [*up, (102, 102, 100, 100)],
            (0, OrderRequest(side="buy", qty=1.0, trailing=Trailing(Level("distance", 1.0)))),
        ),
        "liquidation": lambda: _run(
            [(100, 100, 100, 100), (100, 100, 80, 85)],
            (0, OrderRequest(side="buy", qty=10.0)),
            leverage=10,
        ),
        "max_drawdown": lambda: _run(
            down, (0, OrderRequest(side="buy", qty=100.0)), max_drawdown_pct=2.0, leverage=2
        ),
        "end_of_data": lambda: _end_of_data(),
        "flatten": lambda: _end_of_data("flatten"),
    }


def _end_of_data(reason: str = "end_of_data") -> SimulatedExchange:
    s = _run(FLAT, (0, BUY))
    s.close_all(4 * M, 100.0, reason)
    return s


def _halted() -> SimulatedExchange:
    s = _exits()["max_drawdown"]()
    s.submit(BUY, 3 * M)
    return s


def _rejections() -> dict[str, Callable[[], SimulatedExchange]]:
    return {
        "position_open": lambda: _run(FLAT, (0, BUY), (M, BUY)),
        "risk_sizing_needs_stop": lambda: _run(
            FLAT, (0, OrderRequest(side="buy", sizing=Sizing("risk_based", 1.0)))
        ),
        "qty_step": lambda: _run(FLAT, (0, OrderRequest(side="buy", qty=0.0004))),
        "min_qty": lambda: _run(FLAT, (0, OrderRequest(side="buy", qty=0.005))),
        "min_notional": lambda: _run(
            FLAT, (0, OrderRequest(side="buy", sizing=Sizing("fixed_notional", 4.0)))
        ),
        "stop_beyond_liquidation": lambda: _run(
            FLAT,
            (0, OrderRequest(side="buy", qty=1.0, stop_loss=Level("percent", 5.0))),
            leverage=25,
        ),
        "atr_missing": lambda: _atr_missing(),
        "halted": _halted,
    }


def _atr_missing() -> SimulatedExchange:
    from trade.engine.decide import Decision

    ex = execution([float("nan"), 1.0])
    ex.execute(0, 900_000, [Decision("entry", "long")])
    return ex.sim


def test_the_documented_reasons_are_the_codes_lists() -> None:
    assert sorted(_table("Exit reasons")) == sorted(EXIT_REASONS)
    assert sorted(_table("Rejections")) == sorted(REJECT_REASONS)
    assert sorted(_exits()) == sorted(EXIT_REASONS)
    assert sorted(_rejections()) == sorted(REJECT_REASONS)


@pytest.mark.parametrize("reason", EXIT_REASONS)
def test_a_golden_scenario_exits_with_each_reason(reason: str) -> None:
    s = _exits()[reason]()
    assert [t["exit_reason"] for t in s.trades] == [reason]


@pytest.mark.parametrize("reason", REJECT_REASONS)
def test_a_golden_scenario_rejects_with_each_reason(reason: str) -> None:
    s = _rejections()[reason]()
    assert s.rejections == {reason: 1}
    assert [e["reason"] for e in s.events if e["type"] == "reject"] == [reason]


def test_a_reason_outside_the_lists_is_refused() -> None:
    with pytest.raises(SimulationError, match="exit_reason must be one of"):
        sim(FLAT).submit(OrderRequest(side="sell", reduce_only=True, exit_reason="panic"), 0)
    with pytest.raises(SimulationError, match="unknown rejection reason 'panic'"):
        sim(FLAT).refuse(0, "panic")
    with pytest.raises(SimulationError, match="unknown exit reason 'panic'"):
        sim(FLAT).close_all(0, 100.0, "panic")
