"""Each audit command exits 0 on an example Play and non-zero on a planted problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "m.duckdb")


def test_lookahead_cli(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(["backtest", "audit-lookahead", "--play", "ema_cross", "--db", db, "--samples", "6"])
        == 0
    )
    import trade.features.indicators as ind

    real = ind.compute_batch

    def leaky(name, params, bars, source=None):  # type: ignore[no-untyped-def]
        out = real(name, params, bars, source)
        return {"value": np.append(bars.close[3:], [np.nan] * 3)} if name == "ema" else out

    monkeypatch.setattr(ind, "compute_batch", leaky)
    assert (
        run(["backtest", "audit-lookahead", "--play", "ema_cross", "--db", db, "--samples", "6"])
        == 1
    )
    assert "look-ahead" in capsys.readouterr().out


def test_warmup_cli(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["backtest", "audit-warmup", "--play", "ema_cross", "--db", db]) == 0
    import trade.features.indicators as ind

    monkeypatch.setitem(ind.CONVERGENCE, "ema", lambda p: 0)  # a planted too-short warmup
    from trade.features import registry

    registry.default_catalog.cache_clear()
    try:
        assert run(["backtest", "audit-warmup", "--play", "ema_cross", "--db", db]) == 1
        assert "not converged; suggested warmup_bars" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        registry.default_catalog.cache_clear()


def test_determinism_cli(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["backtest", "verify-determinism", "--play", "ema_cross", "--db", db]) == 0
    from trade.engine import fastloop
    from trade.sim import exchange, kernel

    calls = {"n": 0}
    real_market = exchange.SimulatedExchange._market
    real_kernel = kernel.run_market_play

    def jittery_market(self, p, t, o, k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return real_market(
            self, p, t, o * (1 + 1e-6 * (calls["n"] % 3)), k
        )  # planted: depends on call history

    def jittery_kernel(*args):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        cfg = args[-2].copy()
        cfg[kernel.C_START] *= 1 + 0.1 * calls["n"]  # planted: depends on call history
        return real_kernel(*args[:-2], cfg, args[-1])

    # the jitted loop (ema_cross takes it) and the general loop
    monkeypatch.setattr(kernel, "run_market_play", jittery_kernel)
    assert run(["backtest", "verify-determinism", "--play", "ema_cross", "--db", db]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    monkeypatch.setattr(fastloop, "eligible", lambda compiled: False)
    monkeypatch.setattr(exchange.SimulatedExchange, "_market", jittery_market)
    assert run(["backtest", "verify-determinism", "--play", "ema_cross", "--db", db]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_parity_cli(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["backtest", "audit-parity", "--play", "ema_cross", "--db", db]) == 0
    from trade.features.indicators import IncrementalIndicator

    real = IncrementalIndicator.kernel.fget

    def drifting(self):  # type: ignore[no-untyped-def]
        step, work, cell = real(self)
        if not (self.name == "ema" and self.params["length"] == 20):
            return step, work, cell
        out = self.outputs

        def drift(*args):  # type: ignore[no-untyped-def]
            step(*args)
            out[:] = out * 1.002  # the run rewrites its outputs each bar: no compounding

        return drift, work, cell

    # planted: replay's fast EMA drifts
    monkeypatch.setattr(IncrementalIndicator, "kernel", property(drifting))
    assert run(["backtest", "audit-parity", "--play", "ema_cross", "--db", db]) == 1
    assert "MISMATCH" in capsys.readouterr().out
