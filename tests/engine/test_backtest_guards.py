"""Guards in backtests (the same `GuardSet` as a live session; tests/live/test_guards.py trips each
one in a paper session and checks the backtest of the same bars against it): a guard that never
trips changes nothing, a daily-loss halt lifts at the next UTC day, guarded runs leave the jitted
loop and still agree across drivers, and `--account-guards` applies the account's limits only
when asked (recorded in result.json and the input hash)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from trade.cli.main import run
from trade.engine import fastloop
from trade.engine.backtest import run_backtest
from trade.report.artifacts import iso

ROOT = Path(__file__).resolve().parents[2]
PLAY = ROOT / "plays" / "examples" / "ema_cross.yml"
LOOSE = {
    "max_daily_loss_pct": 100, "max_drawdown_pct": 99, "max_position_notional": 10_000_000,
    "max_leverage": 100, "min_balance": 1, "max_price_deviation_pct": 50,
    "max_orders_per_minute": 50, "require_stop": True,
}  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "m.duckdb"  # the bundled sample, loaded on first read


def guarded(tmp_path: Path, guards: dict[str, Any], name: str = "guarded") -> Path:
    play = yaml.safe_load(PLAY.read_text())
    play["risk"]["guards"] = guards
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play))
    return path


@pytest.mark.parametrize("mode", ["fast", "replay"])
def test_a_guarded_play_that_never_trips_trades_as_unguarded(
    tmp_path: Path, db: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jitted = []
    real = fastloop.run
    monkeypatch.setattr(fastloop, "run", lambda *a: jitted.append(1) or real(*a))
    plain = run_backtest(PLAY, mode=mode, db=db)
    ran_jitted = len(jitted)
    loose = run_backtest(guarded(tmp_path, LOOSE), mode=mode, db=db)
    assert plain.result["trades"] == 69
    assert loose.trades_text == plain.trades_text
    assert loose.equity_text == plain.equity_text
    assert [e for e in loose.output.events if e["type"] == "guard"] == []
    g = loose.result["guards"]
    assert (g["limits"], g["account"], g["actions"], g["halts"]) == (LOOSE, False, {}, [])
    assert plain.result["guards"] == {"limits": {}, "account": False, "actions": {}, "halts": []}
    # fast mode runs an unguarded market Play in the jitted loop, a guarded one per instant
    assert (ran_jitted, len(jitted)) == ((1, 1) if mode == "fast" else (0, 0))


def test_a_daily_loss_halt_lifts_at_the_next_utc_day_in_both_drivers(
    tmp_path: Path, db: Path
) -> None:
    path = guarded(tmp_path, {"max_daily_loss_usdt": 20})
    runs = {m: run_backtest(path, start="2025-06-11", end="2025-06-14", mode=m, db=db)
            for m in ("fast", "replay")}  # fmt: skip
    fast, replay = runs["fast"], runs["replay"]
    assert fast.trades_text == replay.trades_text
    assert fast.events_text == replay.events_text
    g = fast.result["guards"]
    assert g == replay.result["guards"]
    assert g["actions"] == {"max_daily_loss": {"halt": 3, "veto": 3, "lift": 3}}
    assert [(h["start"], h["end"]) for h in g["halts"]] == [
        ("2025-06-11T08:45:00Z", "2025-06-12T00:00:00Z"),
        ("2025-06-12T18:15:00Z", "2025-06-13T00:00:00Z"),
        ("2025-06-13T16:00:00Z", "2025-06-14T00:00:00Z"),
    ]
    lines = [json.loads(x) for x in fast.events_text.splitlines()]
    guard = [(e["ts"], e["action"], e["message"]) for e in lines if e["type"] == "guard"]
    why = "lost 20.98 USDT today (limit 20.00; equity 9979.02)"
    assert guard[:4] == [
        (1749631500000, "halt", f"max_daily_loss: entries halted ({why}); open positions keep "
         "their stops"),  # 08:45: the 08:00 short is 20.98 USDT under the day's first equity
        (1749650400000, "veto", f"max_daily_loss: long entry vetoed (halted: {why})"),  # 14:00
        (1749664800000, "veto", f"max_daily_loss: short entry vetoed (halted: {why})"),  # 18:00
        (1749686400000, "lift", "max_daily_loss: entries allowed again (a new UTC day began)"),
    ]  # fmt: skip
    # every veto is an entry the unguarded run made at that instant, on that side
    plain = run_backtest(PLAY, start="2025-06-11", end="2025-06-14", mode="fast", db=db)
    vetoed = [(e["ts"], e["side"]) for e in lines if e.get("action") == "veto"]
    assert len(vetoed) == 3
    assert set(vetoed) <= {(t["entry_time"], t["side"]) for t in plain.trades}
    assert (len(plain.trades), fast.result["trades"]) == (6, 3)
    # the parity audit holds for the guarded Play (over the whole bundled sample)
    assert run(["backtest", "audit-parity", "--play", str(path), "--db", str(db)]) == 0


def test_cli_prints_the_guards_line_and_writes_their_events_and_report_table(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/dsl.md's guarded example, run as the text under it says."""
    doc = (ROOT / "docs" / "dsl.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "guarded" in b]
    assert yaml.safe_load(block)["risk"]["guards"] == {
        "max_daily_loss_usdt": 20, "max_position_notional": 5000
    }  # fmt: skip
    path = tmp_path / "ema_cross_guarded.yml"
    path.write_text(block)
    out = tmp_path / "run"
    args = ["backtest", "run", "--play", str(path), "--start", "2025-06-11", "--end",
            "2025-06-12", "--db", str(db), "--out", str(out)]  # fmt: skip
    assert run(args) == 0
    said = capsys.readouterr().out
    assert (
        "guards acted: max_position_notional 1 shrink; max_daily_loss 1 halt, 2 vetoes" in said
    ), said
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    acts = [(e["guard"], e["action"]) for e in events if e["type"] == "guard"]
    assert acts == [
        ("max_position_notional", "shrink"),
        ("max_daily_loss", "halt"),
        ("max_daily_loss", "veto"),
        ("max_daily_loss", "veto"),
        ("max_daily_loss", "lift"),
    ]  # fmt: skip  (the lift: 00:00, the last instant)
    at = [e["ts"] for e in events if e["type"] == "guard"]
    assert [iso(t)[11:16] for t in at] == ["08:00", "12:45", "14:00", "18:00", "00:00"]
    shrink = next(e for e in events if e["type"] == "guard")
    assert shrink["message"] == (
        "max_position_notional: short entry shrunk from about 9994.50 to 5000.00 USDT notional"
    )
    exits = [(iso(e["ts"])[11:16], e["side"], e["reason"]) for e in events if e.get("reason")]
    assert ("14:00", "buy", "signal") in exits  # the halt kept the Play's exit
    result = json.loads((out / "result.json").read_text())
    assert result["guards"]["actions"] == {
        "max_position_notional": {"shrink": 1},
        "max_daily_loss": {"halt": 1, "veto": 2, "lift": 1},
    }
    page = (out / "report.html").read_text()
    assert "<h2>Guards (5 actions)</h2>" in page
    assert page.count("<td>max_daily_loss</td>") == 4
    assert "<td>2025-06-11T08:00:00Z</td><td>max_position_notional</td><td>shrink</td>" in page
    # an unguarded run says nothing of guards
    assert run([*args[:3], str(PLAY), *args[4:-1], str(tmp_path / "plain")]) == 0
    assert "guards acted" not in capsys.readouterr().out
    assert "<h2>Guards" not in (tmp_path / "plain" / "report.html").read_text()


def test_account_guards_apply_only_when_asked(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[guards]\nmax_position_notional = 1000\n")
    monkeypatch.setenv("TRADE_CONFIG", str(config))
    window = ["--start", "2025-06-11T07:30", "--end", "2025-06-11T08:15", "--db", str(db)]

    def result(*extra: str, play: Path = PLAY) -> dict[str, Any]:
        out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        args = ["backtest", "run", "--play", str(play), *window, "--out", str(out), "--no-report"]
        assert run([*args, *extra]) == 0
        return json.loads((out / "result.json").read_text())

    plain = result()
    assert (
        plain["guards"]["limits"] == {}
        and plain["provenance"]["request"]["account_guards"] is False
    )
    acc = result("--account-guards")
    assert acc["guards"]["limits"] == {"max_position_notional": 1000}
    assert acc["guards"]["account"] is True and acc["provenance"]["request"]["account_guards"]
    assert acc["guards"]["actions"] == {"max_position_notional": {"shrink": 1}}
    assert acc["input_hash"] != plain["input_hash"]
    assert acc["trades_fingerprint"] != plain["trades_fingerprint"]
    # a Play tightening the account's limit: the tighter one acts
    tight = result("--account-guards", play=guarded(tmp_path, {"max_position_notional": 500}))
    assert tight["guards"]["limits"] == {"max_position_notional": 500}
    # the account's limits are not in the Play: a rerun applies them again (same config: same)
    rerun = tmp_path / "rerun"
    assert (
        run(["backtest", "rerun", str(tmp_path / "run1"), "--out", str(rerun), "--no-report"]) == 0
    )
    assert "ok: same trades fingerprint" in capsys.readouterr().out
    # a Play loosening it is refused with one line, before anything runs
    loose = guarded(tmp_path, {"max_position_notional": 2000}, "loose")
    assert run(["backtest", "run", "--play", str(loose), *window, "--account-guards"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: {loose}: risk.guards.max_position_notional: 2000.0 loosens the account's limit "
        f"1000.0 ({config} [guards]); a Play may only tighten it"
    )
    assert result(play=loose)["guards"]["limits"] == {"max_position_notional": 2000}


TRIPPING = {
    "max_daily_loss_pct": 1,
    "max_position_notional": 4000,
    "max_leverage": 0.8,
    "max_orders_per_minute": 1,
    "max_price_deviation_pct": 0.3,
}  # and min_balance at 99% of each Play's starting equity (below)
EXAMPLES = sorted((ROOT / "plays" / "examples").glob("*.yml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_guards_that_trip_give_the_same_run_in_fast_and_replay(
    tmp_path: Path, db: Path, example: Path
) -> None:
    """Every example Play (limit entries, partial exits, trailing stops, position-dependent rules,
    every_1m evaluation) under guards that act: both drivers write the same trades and events."""
    play = yaml.safe_load(example.read_text())
    play["risk"]["guards"] = {**TRIPPING, "min_balance": play["account"]["starting_equity"] * 0.99}
    path = tmp_path / example.name
    path.write_text(yaml.safe_dump(play))
    fast = run_backtest(path, mode="fast", db=db)
    replay = run_backtest(path, mode="replay", db=db)
    assert fast.result["guards"]["actions"]  # the guards acted
    assert fast.result["trades"] > 0
    assert fast.trades_text == replay.trades_text
    assert fast.events_text == replay.events_text
    assert fast.result["guards"] == replay.result["guards"]
