"""`trade backtest …`: run a Play on history, and the audits that make a run trustworthy."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import textwrap
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import config
from ..errors import InputError
from ..report.artifacts import check_out_dir, write_run
from . import feature_audits
from .options import parse_sets

app = typer.Typer(
    help="Run backtests and the audits that make them trustworthy.", no_args_is_help=True
)
feature_audits.register(app)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@app.command("run")
def run(
    play: Annotated[
        str, typer.Option("--play", help="Play name (plays/examples/NAME.yml) or path.")
    ],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Override the Play's symbol.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First exec bar (UTC date/datetime).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End of the window, exclusive (UTC).")
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Run on a generated market.")
    ] = False,
    pattern: Annotated[str, typer.Option("--pattern", help="Synthetic pattern.")] = "trend_up",
    bars: Annotated[int, typer.Option("--bars", help="Synthetic 1m bars.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Synthetic seed.")] = 1,
    fix_gaps: Annotated[
        bool, typer.Option("--fix-gaps", help="Heal missing bars from Bybit first.")
    ] = False,
    allow_gaps: Annotated[
        bool,
        typer.Option("--allow-gaps", help="Run over missing exec bars (listed in the result)."),
    ] = False,
    require_1m: Annotated[
        bool,
        typer.Option("--require-1m", help="Fail if any exec bar of the window lacks 1m data."),
    ] = False,
    intrabar: Annotated[
        str, typer.Option("--intrabar", help="TP+SL in one 1m bar: pessimistic|optimistic.")
    ] = "pessimistic",
    mode: Annotated[
        str, typer.Option("--mode", help="fast (vectorised) or replay (bar by bar).")
    ] = "fast",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a variable: name=value.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default runs/<play>/<run_id>/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="Market store path.")] = None,
    account_guards: Annotated[
        bool,
        typer.Option(
            "--account-guards",
            help="Also apply the account's [guards] (~/.trade/config.toml), as a live session does.",
        ),
    ] = False,
) -> None:
    """Backtest a Play and write result.json, trades.csv, equity.csv, events.jsonl (and report.html)."""
    from ..engine.backtest import Synthetic

    if bars <= 0:
        raise InputError(f"--bars {bars}: expected a positive number of 1m bars")
    _execute(
        dict(
            play=play,
            symbol=symbol,
            start=start,
            end=end,
            synthetic=Synthetic(pattern, bars, seed) if synthetic else None,
            fix_gaps=fix_gaps,
            allow_gaps=allow_gaps,
            require_1m=require_1m,
            intrabar=intrabar,
            mode=mode,
            overrides=parse_sets(set_),
            db=db or config.db_path(),
            account_guards=account_guards,
        ),
        out,
        as_json,
        no_report,
    )


@app.command("rerun")
def rerun(
    run_dir: Annotated[Path, typer.Argument(help="A run's directory (holds result.json).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default runs/<play>/<run_id>/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
    db: Annotated[
        Path | None, typer.Option("--db", help="Market store path (default: the recorded one).")
    ] = None,
) -> None:
    """Run a recorded backtest again (its play.yml, --set values, window, data source, intrabar
    policy and mode); exit 1 unless the trades fingerprint matches the recorded one."""
    from ..engine.backtest import Synthetic
    from ..engine.provenance import PLAY_COPY, sha256_text

    recorded = _read_result(run_dir)
    prov = recorded.get("provenance")
    if not isinstance(prov, dict):
        raise InputError(
            f"{run_dir / 'result.json'}: no provenance block (written by an older trade); run it again with backtest run"
        )
    play_copy = run_dir / PLAY_COPY
    if not play_copy.is_file():
        raise InputError(f"{play_copy}: missing; a run directory keeps the Play it ran")
    if sha256_text(play_copy.read_text(encoding="utf-8")) != prov["play_sha256"]:
        raise InputError(
            f"{play_copy}: changed since the run (its sha256 differs from result.json)"
        )
    data, req = prov["data"], prov["request"]
    syn = data.get("synthetic")
    result = _execute(
        dict(
            play=play_copy,
            symbol=req["symbol"],
            start=None if syn else recorded["window"]["start"],
            end=None if syn else recorded["window"]["end"],
            synthetic=Synthetic(**syn) if syn else None,
            fix_gaps=False,
            allow_gaps=req.get("allow_gaps", False),
            require_1m=req.get("require_1m", False),
            intrabar=req["intrabar"],
            mode=req["mode"],
            overrides=prov["overrides"],
            db=db or (Path(data["store"]) if data.get("store") else config.db_path()),
            account_guards=req.get("account_guards", False),
        ),
        out,
        as_json,
        no_report,
    )
    same = result["trades_fingerprint"] == recorded["trades_fingerprint"]
    say = err if as_json else console
    say.print(
        f"{'ok: same' if same else 'MISMATCH:'} trades fingerprint: recorded "
        f"{recorded['trades_fingerprint'][:16]} ({recorded['trades']} trades), "
        f"rerun {result['trades_fingerprint'][:16]} ({result['trades']} trades)",
        markup=False,
        soft_wrap=True,
    )
    if not same:
        if result["input_hash"] != recorded["input_hash"]:
            say.print("the inputs differ too (Play, data or engine version)", markup=False)
        raise typer.Exit(1)


def _read_result(run_dir: Path) -> dict:
    path = run_dir / "result.json"
    if not path.is_file():
        raise InputError(f"{path}: not found; expected a run directory written by backtest run")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or "trades_fingerprint" not in data:
        raise InputError(f"{path}: not a backtest result (no trades_fingerprint)")
    return data


def _execute(kwargs: dict, out: Path | None, as_json: bool, no_report: bool) -> dict:
    """Run one backtest with a progress bar, write its artifacts, print the summary or the JSON."""
    from ..engine.backtest import run_backtest
    from ..engine.provenance import PLAY_COPY

    check_out_dir(out)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task(f"{kwargs['mode']} backtest", total=1)

        def progress(i: int, n: int) -> None:
            bar.update(task, total=max(n, 1), completed=i)

        res = run_backtest(**kwargs, progress=progress)
    result = res.result
    for w in result["warnings"]:
        err.print(f"warning: {w}", markup=False, soft_wrap=True)
    if out is None:
        out = Path("runs") / result["play"] / run_id(result)
    extra = {
        "fills.csv": lambda d: (d / "fills.csv").write_text(res.fills_text),
        PLAY_COPY: lambda d: (d / PLAY_COPY).write_text(res.play_text, encoding="utf-8"),
    }
    if not no_report:
        from ..report import html

        extra["report.html"] = lambda d: html.write_report(d / "report.html", res)
    write_run(out, result, res.trades_text, res.equity_text, res.events_text, extra)
    if as_json:
        print((out / "result.json").read_text(), end="")
    else:
        summary(result, out)
    return result


def run_id(result: dict) -> str:
    """Unique per run: start second, mode, intrabar policy, input hash and a random suffix, so runs
    started together with any options never share a directory."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    parts = (stamp, result["mode"], result["intrabar"], result["input_hash"][:8])
    return "-".join((*parts, secrets.token_hex(3)))


def summary(result: dict, out: Path) -> None:
    """The run at a glance in at most 80 columns (paths aside): three metrics a line, the long and
    short split, exit reasons, the 1m fallback, and where the artifacts and the report are (the
    Play's and the data's warnings are printed on stderr before it)."""
    m = result["metrics"]
    w = result["window"]
    say = [
        f"{result['play']} · {result['symbol']} · {result['timeframes']['exec']} · {result['mode']}",
        f"{w['start']} → {w['end']}",
        "",
    ]
    cells = [
        ("return", _pct(m.get("total_return_pct"))),
        ("buy & hold", _pct(m.get("buy_and_hold_return_pct"))),
        ("CAGR", _pct(m.get("cagr_pct"))),
        ("max drawdown", _share(m.get("max_drawdown_pct"))),
        ("sharpe", _dec(m.get("sharpe"))),
        ("sortino", _dec(m.get("sortino"))),
        ("trades", str(m.get("trades"))),
        ("win rate", _share(m.get("win_rate_pct"))),
        ("profit factor", _dec(m.get("profit_factor"))),
        ("expectancy", _dec(m.get("expectancy"))),
        ("exposure", _share(m.get("exposure_pct"))),
        ("in market", _share(m.get("time_in_market_pct"))),
        ("final equity", _dec(m.get("final_equity"))),
        ("fees", _dec(m.get("total_fees"))),
        ("funding", _dec(m.get("total_funding"))),
    ]
    for i in range(0, len(cells), 3):
        say.append("  ".join(f"{k:<13}{v:>12}" for k, v in cells[i : i + 3]).rstrip())
    for side in ("long", "short"):
        say.append(
            f"{side:<6}{m.get(f'{side}_trades', 0):>5} trades   pnl {_dec(m.get(f'{side}_pnl')):>12}"
            f"   win rate {_share(m.get(f'{side}_win_rate_pct')):>9}"
        )
    reasons = " · ".join(f"{k} {v}" for k, v in (m.get("exit_reasons") or {}).items())
    say += textwrap.wrap(f"exit reasons: {reasons or 'none'}", 80, subsequent_indent="  ")
    if m.get("fallback_bars_1m"):
        say += textwrap.wrap(
            f"warning: {m['fallback_bars_1m']} exec bars had no 1m data; their fills and stops "
            "were judged on the exec bar itself",
            80,
            subsequent_indent="  ",
        )
    from ..engine.guards import acted

    guards = acted(result.get("guards") or {})
    if guards:
        say += textwrap.wrap(guards, 80, subsequent_indent="  ")
    if result.get("note"):
        say.append(f"note: {result['note']}")
    say.append(f"fingerprint {result['trades_fingerprint'][:16]}")
    say.append(f"artifacts: {out}")
    if (out / "report.html").exists():
        say.append(f"report: {out / 'report.html'}")
    for line in say:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:+,.2f} %"


def _share(v: float | None) -> str:
    return "–" if v is None else f"{v:,.2f} %"


def _dec(v: float | None) -> str:
    return "–" if v is None else f"{v:,.2f}"


def _window_for(
    play: str,
    symbol: str | None,
    start: str | None,
    end: str | None,
    set_: list[str] | None,
    db: Path | None,
    history_factor: float = 1.0,
):  # type: ignore[no-untyped-def]
    from ..data import open_reader
    from ..engine.backtest import parse_time
    from ..engine.market import load_from_store
    from ..play import find_play, validate_play

    compiled = validate_play(find_play(play), parse_sets(set_))
    with open_reader(db) as store:
        window = load_from_store(
            compiled,
            store,
            (symbol or compiled.play.symbol).upper(),
            parse_time(start, "--start") if start else None,
            parse_time(end, "--end") if end else None,
            history_factor,
        )
    return compiled, window


PlayOpt = Annotated[str, typer.Option("--play", help="Play name or path.")]
SymOpt = Annotated[str | None, typer.Option("--symbol", help="Override the Play's symbol.")]
StartOpt = Annotated[str | None, typer.Option("--start", help="Window start (UTC).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Window end (UTC).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a variable: name=value.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="Market store path.")]


@app.command("audit-lookahead")
def audit_lookahead_cmd(
    play: PlayOpt,
    symbol: SymOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    samples: Annotated[int, typer.Option("--samples", help="Decision instants to re-check.")] = 12,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    set_: SetOpt = None,
    db: DbOpt = None,
) -> None:
    """Re-run with the data cut at sampled instants; any changed value or decision is look-ahead."""
    from ..engine.audits import audit_lookahead

    compiled, window = _window_for(play, symbol, start, end, set_, db)
    rep = audit_lookahead(compiled, window, samples=samples, seed=seed)
    if rep.findings:
        table = Table(title="look-ahead: values that changed when the future was removed")
        for col in ("instant", "value", "full data", "cut at instant"):
            table.add_column(col)
        from ..report.artifacts import iso

        for f in rep.findings[:50]:
            table.add_row(iso(f.instant), f.what, repr(f.full), repr(f.truncated))
        console.print(table)
        raise typer.Exit(1)
    console.print(
        f"ok: no look-ahead in {rep.checked_values} values at {rep.checked_instants} instants",
        markup=False,
    )


@app.command("audit-warmup")
def audit_warmup_cmd(
    play: PlayOpt,
    symbol: SymOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Relative change counted as converged.")
    ] = 1e-6,
    set_: SetOpt = None,
    db: DbOpt = None,
) -> None:
    """Vary the warmup history; list features whose first evaluated value still moves."""
    from ..engine.audits import audit_warmup

    compiled, window = _window_for(play, symbol, start, end, set_, db, history_factor=4.0)
    rows, suggested = audit_warmup(compiled, window, rel_tol=tolerance)
    table = Table(
        title=f"warmup convergence at the first evaluated bar (standard warmup {compiled.warmup_exec_bars()} exec bars)"
    )
    for col in ("series", "max abs change", "converged"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.series, f"{r.max_abs_diff:.3g}", "yes" if r.converged else "NO")
    console.print(table)
    bad = [r for r in rows if not r.converged]
    if bad:
        console.print(
            f"{len(bad)} series not converged; suggested warmup_bars: {suggested}", markup=False
        )
        raise typer.Exit(1)
    console.print("ok: every feature converged with the standard warmup", markup=False)


@app.command("verify-determinism")
def verify_determinism(
    play: PlayOpt,
    symbol: SymOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    mode: Annotated[str, typer.Option("--mode")] = "fast",
    set_: SetOpt = None,
    db: DbOpt = None,
) -> None:
    """Run twice; the trades fingerprints must be equal."""
    from ..engine.backtest import run_backtest

    prints = []
    for _ in range(2):
        res = run_backtest(
            play,
            symbol=symbol,
            start=start,
            end=end,
            mode=mode,
            overrides=parse_sets(set_),
            db=db or config.db_path(),
        )
        prints.append((res.result["trades_fingerprint"], res.trades_text))
    same = prints[0] == prints[1]
    console.print(
        f"{'ok' if same else 'MISMATCH'}: run 1 {prints[0][0][:16]}  run 2 {prints[1][0][:16]}",
        markup=False,
    )
    if not same:
        raise typer.Exit(1)


@app.command("audit-parity")
def audit_parity(
    play: PlayOpt,
    symbol: SymOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    set_: SetOpt = None,
    db: DbOpt = None,
) -> None:
    """Run fast and replay modes; their trades fingerprints must be equal."""
    from ..engine.backtest import run_backtest

    out = {}
    for mode in ("fast", "replay"):
        res = run_backtest(
            play,
            symbol=symbol,
            start=start,
            end=end,
            mode=mode,
            overrides=parse_sets(set_),
            db=db or config.db_path(),
        )
        out[mode] = res
    f, r = out["fast"].result, out["replay"].result
    same = f["trades_fingerprint"] == r["trades_fingerprint"]
    console.print(
        f"{'ok' if same else 'MISMATCH'}: fast {f['trades']} trades {f['trades_fingerprint'][:16]}  replay {r['trades']} trades {r['trades_fingerprint'][:16]}",
        markup=False,
    )
    if not same:
        raise typer.Exit(1)
