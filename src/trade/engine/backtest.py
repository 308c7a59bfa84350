"""One backtest end to end: resolve the Play, load the window, run a driver, assemble the result.

This is the single entry point the CLI, the audits and the tests call, so a run means the same thing
everywhere. It never writes files itself (see `trade.report.artifacts`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, config
from ..errors import InputError
from ..play import CompiledPlay, find_play, validate_play
from ..play.model import Guards
from ..report.artifacts import equity_csv, events_jsonl, fills_csv, iso, trades_csv
from ..report.positions import Closes, FillTags, Positions, position_table
from ..report.positions import fills as all_fills
from ..timeframes import TIMEFRAMES
from . import guards as G
from .market import MarketWindow, describe_ranges, load_from_store, runs, synthetic_window
from .provenance import data_summary, provenance
from .runner import ProgressFn, RunOutput, bars_per_year, run_fast, run_replay

MODES = ("fast", "replay")
INTRABAR = ("pessimistic", "optimistic")


@dataclass(frozen=True)
class Synthetic:
    pattern: str
    bars: int
    seed: int


@dataclass
class BacktestResult:
    result: dict[str, Any]
    trades_text: str
    equity_text: str
    events_text: str
    output: RunOutput
    window: MarketWindow
    compiled: CompiledPlay
    play_text: str = ""  # the Play file as read (kept beside the result for `backtest rerun`)
    trades: list[dict[str, Any]] = field(default_factory=list)  # one per position (trades.csv)
    fills_text: str = ""  # fills.csv


def parse_time(text: str, flag: str) -> int:
    """`2025-06-01`, `2025-06-01T12:00`, `2025-06-01 12:00:00` (UTC) → epoch ms."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{flag} {text!r}: expected a UTC date or datetime such as 2025-06-01 or 2025-06-01T12:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def run_backtest(
    play: str | Path,
    *,
    symbol: str | None = None,
    start: str | None = None,
    end: str | None = None,
    synthetic: Synthetic | None = None,
    fix_gaps: bool = False,
    allow_gaps: bool = False,
    require_1m: bool = False,
    intrabar: str = "pessimistic",
    mode: str = "fast",
    overrides: Mapping[str, str] | None = None,
    db: Path | None = None,
    progress: ProgressFn | None = None,
    account_guards: bool = False,
) -> BacktestResult:
    """`account_guards`: apply the account's `[guards]` (`~/.trade/config.toml`) tightened by the
    Play's, as a live session would; by default only the Play's own `risk.guards` act, so a result
    never depends on the machine it ran on."""
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if intrabar not in INTRABAR:
        raise InputError(f"--intrabar {intrabar!r}: expected one of {', '.join(INTRABAR)}")
    path = find_play(str(play))
    compiled = validate_play(path, overrides)
    play_text = Path(path).read_text(encoding="utf-8")
    limits = (
        G.effective_guards(compiled.play, str(path))
        if account_guards
        else compiled.play.risk.guards
    )
    sym = (symbol or compiled.play.symbol).upper()
    start_ms = parse_time(start, "--start") if start else None
    end_ms = parse_time(end, "--end") if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InputError(f"--end {end} must be after --start {start}")
    if synthetic is not None:
        if start or end:
            raise InputError("--synthetic generates its own window; drop --start/--end")
        window = synthetic_window(compiled, synthetic.pattern, synthetic.bars, synthetic.seed, sym)
    else:
        from ..data import MarketStore, open_reader

        if fix_gaps:  # the one backtest that writes: it waits for the store like any writer
            from ..data import heal_for_window

            with MarketStore(db) as store:
                store.ensure_sample()
                heal_for_window(store, sym, ["1m", compiled.exec_tf], start_ms, end_ms)
        with open_reader(db) as store:
            window = load_from_store(
                compiled,
                store,
                sym,
                start_ms,
                end_ms,
                allow_gaps=allow_gaps,
                require_1m=require_1m,
            )
    driver = run_fast if mode == "fast" else run_replay
    out = driver(compiled, window, intrabar_policy=intrabar, progress=progress, guards=limits)
    res = _assemble(
        compiled,
        window,
        out,
        mode=mode,
        intrabar=intrabar,
        synthetic=synthetic,
        overrides=overrides,
        guards=limits,
        account_guards=account_guards,
    )
    res.play_text = play_text
    res.result["provenance"] = provenance(
        command=config.command_line(),
        play_text=play_text,
        play_file=str(path),
        overrides=overrides,
        variables=compiled.play.variables,
        resolved_play=compiled.play.model_dump(mode="json"),
        request={
            "symbol": sym,
            "start": start,
            "end": end,
            "intrabar": intrabar,
            "mode": mode,
            "fix_gaps": fix_gaps,
            "allow_gaps": allow_gaps,
            "require_1m": require_1m,
            "account_guards": account_guards,
        },
        data=data_summary(
            window,
            "synthetic" if synthetic else "store",
            None if synthetic else str(db or config.db_path()),
            synthetic.__dict__ if synthetic else None,
        ),
    )
    return res


def _assemble(
    compiled: CompiledPlay,
    window: MarketWindow,
    out: RunOutput,
    *,
    mode: str,
    intrabar: str,
    synthetic: Synthetic | None,
    overrides: Mapping[str, str] | None,
    guards: Guards | None = None,
    account_guards: bool = False,
) -> BacktestResult:
    play = compiled.play
    guards = play.risk.guards if guards is None else guards
    table, metrics = summarise(compiled, window, out)
    trades, fills = table.rows(), all_fills(out.events)
    t_text = trades_csv(trades)
    peak = np.maximum.accumulate(out.equity) if len(out.equity) else out.equity
    dd_pct = (
        np.where(peak > 0, (peak - out.equity) / peak * 100.0, 0.0)
        if len(out.equity)
        else out.equity
    )
    e_text = equity_csv(out.equity_ts, out.equity, dd_pct)
    result = {
        "play": play.name,
        "play_file": compiled.origin,
        "symbol": window.symbol,
        "mode": mode,
        "intrabar": intrabar,
        "window": {"start": iso(window.start_ms), "end": iso(window.end_ms)},
        "timeframes": {
            "low_tf": play.timeframes.low_tf,
            "med_tf": play.timeframes.med_tf,
            "high_tf": play.timeframes.high_tf,
            "exec": compiled.exec_tf,
        },
        "evaluation": play.evaluation,
        "engine_version": __version__,
        "input_hash": _input_hash(
            compiled, window, synthetic, overrides, guards if account_guards else None
        ),
        "trades_fingerprint": table.fingerprint(),
        "trades": len(trades),
        "fills": len(fills),
        "signals": out.signals,
        "evaluated_instants": len(out.instants),
        "metrics": metrics,
        "coverage": _coverage(window, compiled.exec_tf),
        "guards": G.summary(guards, account_guards, out.events),
    }
    result["warnings"] = [*compiled.warnings, *_data_warnings(window, result["coverage"])]
    if not trades:
        result["note"] = "the Play produced zero trades in this window"
    return BacktestResult(
        result,
        t_text,
        e_text,
        events_jsonl(out.events),
        out,
        window,
        compiled,
        trades=trades,
        fills_text=fills_csv(fills),
    )


def summarise(
    compiled: CompiledPlay, window: MarketWindow, out: RunOutput
) -> tuple[Positions, dict[str, Any]]:
    """A run's positions (trades.csv's rows, as columns: they give the fingerprint) and metrics:
    the part of a result a sweep keeps for every combination."""
    from ..report.metrics import buy_and_hold_curve, compute_metrics

    play = compiled.play
    closes, tags = out.records or (Closes.from_dicts(out.trades), FillTags.from_events(out.events))
    table = position_table(closes, tags)
    exec_bars = window.bars[compiled.exec_tf]
    ts = np.asarray(out.equity_ts)
    hold = buy_and_hold_curve(  # its first and last points: the benchmark needs the last
        # bars closed by t are those opened by t − tf: the same bars, without an array of closes
        (ts[[0, -1]] if len(ts) else ts) - exec_bars.tf_ms,
        exec_bars.ts,
        exec_bars.close,
        play.account.starting_equity,
    )
    metrics = compute_metrics(
        table,
        out.equity_ts,
        out.equity,
        starting_equity=play.account.starting_equity,
        bars_per_year=bars_per_year(compiled.exec_tf),
        window=(window.start_ms, window.end_ms),
        buy_hold_final=float(hold[-1]) if len(hold) else None,
        closes=closes,
    )
    metrics.update(out.counters)
    return table, metrics


def _coverage(window: MarketWindow, exec_tf: str) -> dict[str, Any]:
    """How much of the window was priced as DESIGN §4 wants: exec bars absent from the store
    (run with --allow-gaps) and exec bars priced on their own OHLC for lack of 1m data."""
    step = TIMEFRAMES[exec_tf]
    n = len(window.bars[exec_tf].window(window.start_ms, window.end_ms))
    fb = window.intrabar.fallbacks

    def listed(ranges: list[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"first": iso(a), "last": iso(b), "bars": (b - a) // step + 1} for a, b in ranges]

    return {
        "timeframe": exec_tf,
        "exec_bars": n,
        "missing_exec_bars": sum((b - a) // step + 1 for a, b in window.missing_exec),
        "missing": listed(list(window.missing_exec)),
        "fallback_bars_1m": fb,
        "fallback_share_pct": round(fb / n * 100.0, 4) if n else 0.0,
        "fallback": listed(runs(window.intrabar.fallback_ts, step)),
    }


def _data_warnings(window: MarketWindow, cov: Mapping[str, Any]) -> list[str]:
    """One line per way the run is less exact than 1m data over a complete window would make it."""
    tf, out = cov["timeframe"], []
    if cov["missing_exec_bars"]:
        out.append(
            f"{window.symbol} {tf}: {cov['missing_exec_bars']} bar(s) missing inside the window "
            f"were skipped (--allow-gaps): {describe_ranges(list(window.missing_exec))}"
        )
    if cov["fallback_bars_1m"]:
        fallback = runs(window.intrabar.fallback_ts, TIMEFRAMES[tf])
        out.append(
            f"{window.symbol}: {cov['fallback_bars_1m']:,} of {cov['exec_bars']:,} {tf} bars "
            f"({cov['fallback_share_pct']:.2f}% of the window) have no 1m data "
            f"({describe_ranges(fallback)}); fills, stops and liquidations there are priced on "
            "the exec bar's OHLC (--require-1m makes this an error)"
        )
    return out


def _input_hash(
    compiled: CompiledPlay,
    window: MarketWindow,
    synthetic: Synthetic | None,
    overrides: Mapping[str, str] | None,
    account_guards: Guards | None = None,
) -> str:
    """sha256 over the normalised Play, the data window's bytes and the engine version (and the
    guards in force when the account's were applied: they are not in the Play)."""
    h = hashlib.sha256()
    h.update(json.dumps(compiled.play.model_dump(mode="json"), sort_keys=True).encode())
    if account_guards is not None:
        h.update(json.dumps({"guards": account_guards.model_dump()}, sort_keys=True).encode())
    h.update(
        json.dumps(
            {
                "overrides": dict(overrides or {}),
                "synthetic": synthetic.__dict__ if synthetic else None,
            }
        ).encode()
    )
    h.update(f"{window.symbol}|{window.start_ms}|{window.end_ms}|{__version__}".encode())
    for tf in sorted(window.bars, key=TIMEFRAMES.get):  # type: ignore[arg-type]
        b = window.bars[tf]
        for arr in (b.ts, b.open, b.high, b.low, b.close, b.volume):
            h.update(np.ascontiguousarray(arr).tobytes())
    ib = window.intrabar
    for arr in (
        ib.ts_open,
        ib.open,
        ib.high,
        ib.low,
        ib.close,
        window.funding_ts,
        window.funding_rate,
    ):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
