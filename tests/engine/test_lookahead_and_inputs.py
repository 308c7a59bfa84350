"""No look-ahead across timeframes through the whole engine, the look-ahead audit, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.data import synthetic_market
from trade.data.resample import resample
from trade.engine.audits import audit_lookahead
from trade.engine.market import window_from_bars
from trade.engine.runner import ArraySource, evaluation_instants
from trade.play import ast as A
from trade.play import validate_play_text

ROOT = Path(__file__).resolve().parents[2]
PLAY = """
version: "1"
name: htf
symbol: SYNTH
timeframes: {low_tf: 15m, med_tf: 1h, high_tf: 4h, exec: low_tf}
account: {starting_equity: 10000}
features:
  sma_4h: {indicator: sma, tf: high_tf, params: {length: 3}}
  ema: {indicator: ema, params: {length: 10}}
actions:
  entry_long: [[close, cross_above, sma_4h]]
  exit_long: [[ema, cross_below, sma_4h]]
"""


def test_higher_timeframe_value_changes_exactly_at_its_close() -> None:
    compiled = validate_play_text(PLAY)
    m15 = resample(synthetic_market("volatile", 60 * 24 * 10, 3), "15m")
    window = window_from_bars(compiled, m15)
    instants = evaluation_instants(compiled, window)
    src = ArraySource(compiled, window, instants)
    seen = src.series(A.Series("sma_4h.value", 0, A.Kind.FLOAT))
    h4 = window.bars["4h"]
    direct = resample(m15, "4h")
    np.testing.assert_array_equal(h4.close, direct.close)
    closes = h4.ts + 4 * 3_600_000
    for k in range(3, len(h4) - 1):
        at = int(np.searchsorted(instants, closes[k]))
        if at == 0 or at >= len(instants) or instants[at] != closes[k]:
            continue
        expected_new = direct.close[k - 2 : k + 1].mean()
        expected_old = direct.close[k - 3 : k].mean()
        assert seen[at] == pytest.approx(
            expected_new, rel=1e-12
        )  # the 15m bar ending at the 4h close
        assert seen[at - 1] == pytest.approx(expected_old, rel=1e-12)  # the 15m bar before it


def test_gap_in_one_feed_shifts_no_other() -> None:
    compiled = validate_play_text(PLAY)
    m15 = resample(synthetic_market("volatile", 60 * 24 * 10, 3), "15m")
    window = window_from_bars(compiled, m15)
    instants = evaluation_instants(compiled, window)
    full = ArraySource(compiled, window, instants).series(A.Series("ema.value", 0, A.Kind.FLOAT))
    h4 = window.bars["4h"]
    holed = dict(window.bars)
    holed["4h"] = h4.slice(0, 10).__class__.from_arrays(
        "SYNTH",
        "4h",
        np.delete(h4.ts, [12]),
        np.delete(h4.open, [12]),
        np.delete(h4.high, [12]),
        np.delete(h4.low, [12]),
        np.delete(h4.close, [12]),
        np.delete(h4.volume, [12]),
    )
    from dataclasses import replace

    gapped = ArraySource(compiled, replace(window, bars=holed), instants)
    np.testing.assert_array_equal(gapped.series(A.Series("ema.value", 0, A.Kind.FLOAT)), full)
    sma = gapped.series(A.Series("sma_4h.value", 0, A.Kind.FLOAT))
    gap_close = int(h4.ts[12]) + 4 * 3_600_000
    i = int(np.searchsorted(instants, gap_close))
    assert sma[i] == sma[i - 1]  # the missing bar never becomes visible; the last closed one stays


def test_lookahead_audit_passes_examples_and_catches_a_leak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = validate_play_text(PLAY)
    m15 = resample(synthetic_market("volatile", 60 * 24 * 10, 3), "15m")
    window = window_from_bars(compiled, m15)
    clean = audit_lookahead(compiled, window, samples=8)
    assert clean.findings == [] and clean.checked_values > 0

    import trade.features.indicators as ind

    real = ind.compute_batch

    def leaky(name, params, bars, source=None):  # type: ignore[no-untyped-def]
        out = real(name, params, bars, source)
        if name == "ema":  # a test-only leak: each bar sees the next bar's close
            out = {"value": np.append(bars.close[1:], np.nan)}
        return out

    monkeypatch.setattr(ind, "compute_batch", leaky)
    leak = audit_lookahead(compiled, window, samples=8)
    assert leak.findings and all(f.what.startswith(("ema", "case")) for f in leak.findings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--play", "no_such_play"], "unknown Play 'no_such_play'"),
        (
            ["--play", str(ROOT / "tests/fixtures/bad_plays/float_equality.yml")],
            "'==' on float values is not allowed",
        ),
        (
            ["--play", "ema_cross", "--start", "2019-01-01", "--end", "2019-02-01"],
            "missing BTCUSDT 15m data",
        ),
        (["--play", "ema_cross", "--symbol", "DOGEUSDT"], "no 15m data for DOGEUSDT in the store"),
        (
            ["--play", "ema_cross", "--start", "yesterday"],
            "--start 'yesterday': expected a UTC date",
        ),
        (
            ["--play", "ema_cross", "--mode", "turbo"],
            "--mode 'turbo': expected one of fast, replay",
        ),
    ],
)
def test_bad_backtest_input(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = run(["backtest", "run", *args, "--db", str(tmp_path / "m.duckdb"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_backtest_run_writes_every_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert (
        run(
            [
                "backtest",
                "run",
                "--play",
                "ema_cross",
                "--db",
                str(tmp_path / "m.duckdb"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "equity.csv",
        "events.jsonl",
        "fills.csv",
        "play.yml",
        "report.html",
        "result.json",
        "trades.csv",
    ]
    header = (out / "trades.csv").read_text().splitlines()[0]
    assert (
        header
        == "trade_id,side,entry_time,entry_price,exit_time,exit_price,qty,notional,exit_reason,exit_block,entry_block,exits,fees,funding,pnl,return_pct,mae_pct,mfe_pct,bars_held"
    )
    assert (out / "equity.csv").read_text().splitlines()[0] == "time,equity,drawdown_pct"


def test_warmup_audit_flags_a_too_short_warmup_and_passes_the_standard_one() -> None:
    from dataclasses import replace

    from trade.engine.audits import audit_warmup

    play = PLAY.replace("length: 10}", "length: 50}")
    compiled = validate_play_text(play)
    m15 = resample(synthetic_market("volatile", 60 * 24 * 40, 3), "15m")
    window = window_from_bars(compiled, m15)
    # trim the loaded history to what the standard warmup asks for, times 4, then audit
    rows, _ = audit_warmup(compiled, window)
    assert all(r.converged for r in rows)
    short = replace(
        compiled,
        features=tuple(
            replace(f, warmup=f.warmup // 20) if f.key == "ema" else f for f in compiled.features
        ),
    )
    rows, suggested = audit_warmup(short, window)
    bad = [r.series for r in rows if not r.converged]
    assert bad == ["ema.value"] and suggested > short.warmup_exec_bars()
