"""Guards between the engine's decisions and the broker: each one trips in a paper session and in
a demo session against the fake exchange (ema_cross on 2025-06-11: short at 08:00, flipped long at
14:00 after a loss), and the vetoed or shrunk order, the halt and the journal line are checked; a
backtest of the same bars (replay and fast) takes the same actions at the same instants and ends
with the paper session's trades; account limits in `~/.trade/config.toml` can only be tightened by
a Play."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time, run_backtest
from trade.engine.play_engine import PlayEngine
from trade.errors import InputError
from trade.exchange.bybit import BybitRest
from trade.live.diff import diff_session
from trade.live.launch import make_runner, open_record, plan_session
from trade.live.runner import LiveRunner
from trade.live.session import SessionRecord
from trade.report.artifacts import iso, trades_csv
from trade.report.positions import position_trades

from .inproc import subscribed
from .receiver import Receiver

PLAY = Path(__file__).resolve().parents[2] / "plays" / "examples" / "ema_cross.yml"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def home(home: Path, receiver: Receiver) -> Path:
    """The sessions' home (conftest), its config sending notifications to `receiver`."""
    (home / ".trade").mkdir()
    (home / ".trade" / "config.toml").write_text(f'[notify]\nurls = ["{receiver.url}"]\n')
    return home


def play_file(home: Path, guards: dict[str, Any], **changes: Any) -> Path:
    play = yaml.safe_load(PLAY.read_text())
    play["risk"]["guards"] = guards
    for key, value in changes.items():
        if value is None:
            play["risk"].pop(key, None)
        else:
            play[key] = value
    path = home / "guarded.yml"
    path.write_text(yaml.safe_dump(play))
    return path


def run(
    fake: FakeBybit, home: Path, play: Path, mode: str, end: str, begin: str = "07:30"
) -> tuple[LiveRunner, list[dict[str, Any]], list[dict[str, Any]]]:
    """A session of `play` from `begin` to `end` on 2025-06-11 (resumed when it exists already);
    its journal and closed trades."""
    plan = plan_session(str(play), mode, session=f"{mode}-guards")
    start, stop = parse_time(f"2025-06-11T{begin}", "s"), parse_time(f"2025-06-11T{end}", "e")
    with MarketStore(home / "market.duckdb", read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", PlayEngine(plan.compiled).timeframes(), start, stop)
        day.load_history()
    record = open_record(plan)

    async def go() -> LiveRunner:
        async with BybitRest(
            environment=plan.environment, credentials=plan.credentials, backoff=0.01
        ) as rest:
            runner = make_runner(plan, record, rest, store_path=None, backoff=0.01)
            task = asyncio.create_task(runner.run())
            while runner.broker is None or runner.stream_state == "connecting":
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            await subscribed(fake, 2 if mode == "demo" else 1, task)
            await day.play(runner, trades=mode == "demo")
            runner.request_stop()
            await task
            return runner

    runner = asyncio.run(go())
    with SessionRecord(record.path, readonly=True) as rec:
        return runner, rec.journal_rows(), rec.trade_rows()


def guard_lines(journal: list[dict[str, Any]]) -> list[str]:
    return [j["message"] for j in journal if j["kind"] in ("guard", "halt")]


def notified(receiver: Receiver, lines: list[str]) -> None:
    """Every guard line reached the receiver (through apprise's JSON target)."""
    got = [m["message"] for m in receiver.messages if m["title"].endswith((": guard", ": halt"))]
    assert got == lines


def position(runner: LiveRunner, fake: FakeBybit, mode: str) -> tuple[str, float]:
    view = runner.broker.view()  # type: ignore[union-attr]
    if mode == "demo":  # the exchange agrees
        size = float(fake.positions.get("BTCUSDT", {}).get("size", "0"))
        assert size == view.qty
    return view.side, view.qty


def backtest_agrees(
    runner: LiveRunner, journal: list[dict[str, Any]], play: Path, end: str, at: list[str]
) -> None:
    """A backtest of the paper session's bars, in both drivers, acts at the instants `at` (UTC
    times of 2025-06-11) with the session's journal lines, and its closed trades are the
    session's; result.json counts the actions and lists the halts; the session's diff holds."""
    want = [(j["ts"], j["message"]) for j in journal if j["kind"] in ("guard", "halt")]
    assert [iso(t)[11:16] for t, _ in want] == at
    paper, _ = position_trades(runner.broker.trades(), runner.broker.sim.events)  # type: ignore[union-attr]
    for mode in ("replay", "fast"):
        bt = run_backtest(play, start="2025-06-11T07:30", end=f"2025-06-11T{end}", mode=mode)
        events = [e for e in bt.output.events if e["type"] == "guard"]
        assert [(e["ts"], e["message"]) for e in events] == want, mode
        closed = [t for t in bt.trades if t["exit_reason"] != "end_of_data"]
        assert trades_csv(closed) == trades_csv(paper), mode
        summary = bt.result["guards"]
        counts: dict[str, dict[str, int]] = {}
        for e in events:
            per = counts.setdefault(e["guard"], {})
            per[e["action"]] = per.get(e["action"], 0) + 1
        assert summary["actions"] == counts and summary["account"] is False
        halts = [(h["guard"], h["start"], h["end"]) for h in summary["halts"]]
        assert halts == [(e["guard"], iso(e["ts"]), None) for e in events if e["action"] == "halt"]
    # `trade play diff` replays the session with the Play's guards: the same decisions and trades
    with SessionRecord(runner.record.path, readonly=True) as rec:
        report = diff_session(rec)
    assert report.reproduced and report.decisions_live == report.decisions_replayed
    assert [g["pnl_gap"] for g in report.trades] == [0.0] * len(paper)


MODES = ["paper", "demo"]


@pytest.mark.parametrize("mode", MODES)
def test_max_position_notional_shrinks_the_entry(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str
) -> None:
    path = play_file(home, {"max_position_notional": 1000})
    runner, journal, _ = run(fake, home, path, mode, "08:15")
    lines = guard_lines(journal)
    notified(receiver, lines)
    assert len(lines) == 1
    assert re.fullmatch(
        r"max_position_notional: short entry shrunk from about 99\d\d\.\d\d to 1000\.00 USDT "
        r"notional", lines[0]
    ), lines  # fmt: skip
    assert position(runner, fake, mode) == ("short", 0.009)  # 1000 / 109,360 rounded down
    assert runner.snapshot().guards == {"max_position_notional": "armed (1 action)"}
    if mode == "paper":
        backtest_agrees(runner, journal, path, "08:15", ["08:00"])
        bt = run_backtest(path, start="2025-06-11T07:30", end="2025-06-11T08:15")
        assert [(t["side"], t["qty"]) for t in bt.trades] == [("short", 0.009)]


@pytest.mark.parametrize("mode", MODES)
def test_max_leverage_shrinks_the_entry_to_equity_times_the_ceiling(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str
) -> None:
    path = play_file(home, {"max_leverage": 0.25})
    runner, journal, _ = run(fake, home, path, mode, "08:15")
    lines = guard_lines(journal)
    notified(receiver, lines)
    assert len(lines) == 1 and lines[0].startswith("max_leverage: short entry shrunk from about")
    cap = float(re.search(r"to (\d+\.\d\d) USDT", lines[0]).group(1))  # type: ignore[union-attr]
    balance = runner.broker.view().balance  # type: ignore[union-attr]
    assert cap == pytest.approx(balance * 0.25, rel=1e-3)  # the balance before the entry's fee
    side, qty = position(runner, fake, mode)
    assert side == "short" and qty == math.floor(cap / 109_360 * 1000) / 1000
    if mode == "paper":
        assert lines == [
            "max_leverage: short entry shrunk from about 9994.50 to 2500.00 USDT notional"
        ]  # flat at 08:00: equity is the starting 10,000
        backtest_agrees(runner, journal, path, "08:15", ["08:00"])


@pytest.mark.parametrize("mode", MODES)
def test_max_price_deviation_vetoes_a_limit_entry_far_from_the_last_price(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str
) -> None:
    entry = {"order_type": "limit", "limit_offset_pct": 0.5, "expire_after_bars": 2}
    path = play_file(home, {"max_price_deviation_pct": 0.2}, entry=entry)
    runner, journal, _ = run(fake, home, path, mode, "08:15")
    lines = guard_lines(journal)
    notified(receiver, lines)
    # the 07:45-08:00 bar closed at 109,382.7 (the 1m close too): a limit 0.5% above it
    assert lines == [
        "max_price_deviation_pct: short entry vetoed (limit 109928 is 0.500% from the last price "
        "109382 (limit 0.2%))"
    ]
    assert position(runner, fake, mode) == ("flat", 0.0)
    assert not [o for o in fake.orders.values() if o["orderType"] == "Limit"]
    if mode == "paper":
        backtest_agrees(runner, journal, path, "08:15", ["08:00"])


@pytest.mark.parametrize("mode", MODES)
def test_max_orders_per_minute_vetoes_the_entry_of_a_flip(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str
) -> None:
    path = play_file(home, {"max_orders_per_minute": 1})
    runner, journal, trades = run(fake, home, path, mode, "14:15")
    notified(receiver, guard_lines(journal))
    assert guard_lines(journal) == [
        "max_orders_per_minute: long entry vetoed (1 order(s) sent in the last minute (limit 1))"
    ]
    # the exit of the flip went out (exits are never vetoed); its entry did not
    assert [(t["side"], t["exit_reason"]) for t in trades] == [("short", "signal")]
    assert position(runner, fake, mode) == ("flat", 0.0)
    if mode == "paper":
        backtest_agrees(runner, journal, path, "14:15", ["14:00"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("guards", "halt"),
    [
        ({"max_daily_loss_usdt": 20}, r"max_daily_loss: entries halted \(lost \d\d\.\d\d USDT "
         r"today \(limit 20\.00; equity 99\d\d\.\d\d\)\); open positions keep their stops"),
        ({"max_daily_loss_pct": 0.2}, r"max_daily_loss: entries halted \(lost \d\d\.\d\d USDT "
         r"today \(limit 20\.00; equity 99\d\d\.\d\d\)\); open positions keep their stops"),
        ({"max_drawdown_pct": 0.2}, r"max_drawdown_pct: entries halted \(drawdown 0\.\d\d% from "
         r"the peak 1\d{4}\.\d\d \(limit 0\.2%\)\); open positions keep their stops"),
    ],
)  # fmt: skip
def test_a_loss_halts_entries_and_keeps_the_position_protected(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str, guards: dict[str, float], halt: str
) -> None:
    path = play_file(home, guards)
    runner, journal, trades = run(fake, home, path, mode, "14:15")
    lines = guard_lines(journal)
    notified(receiver, lines)
    assert re.fullmatch(halt, lines[0]), lines
    guard = lines[0].split(":")[0]
    why = lines[0].split(" (", 1)[1].split("); open positions")[0]
    assert lines[1:] == [f"{guard}: long entry vetoed (halted: {why})"]
    assert [(t["side"], t["exit_reason"]) for t in trades] == [("short", "signal")]
    assert position(runner, fake, mode) == ("flat", 0.0)
    assert runner.snapshot().guard_halt is not None
    if mode == "paper":
        # the short loses 20.98 USDT (0.21%) by the 08:45 instant; the flip's entry at 14:00
        backtest_agrees(runner, journal, path, "14:15", ["08:45", "14:00"])


def test_a_resumed_session_does_not_repeat_its_guards_lines_and_keeps_the_halt(
    fake: FakeBybit, home: Path, receiver: Receiver
) -> None:
    path = play_file(home, {"max_daily_loss_usdt": 20})
    _, before, _ = run(fake, home, path, "paper", "10:00")
    lines = guard_lines(before)
    assert len(lines) == 1 and lines[0].startswith("max_daily_loss: entries halted (lost ")
    # resumed: the rebuild passes the 08:45 halt again without saying it twice; the halt holds
    # and vetoes the flip's entry at 14:00, as in the uninterrupted session
    runner, journal, trades = run(fake, home, path, "paper", "14:15", begin="10:00")
    assert [j["kind"] for j in journal].count("resume") == 1
    assert guard_lines(journal) == [
        *lines,
        "max_daily_loss: long entry vetoed (halted: lost "
        + lines[0].split("(lost ", 1)[1].split("); open")[0]
        + ")",
    ]
    notified(receiver, guard_lines(journal))
    assert [(t["side"], t["exit_reason"]) for t in trades] == [("short", "signal")]
    assert runner.snapshot().guard_halt is not None


@pytest.mark.parametrize("mode", MODES)
def test_min_balance_halts_before_the_first_entry(
    fake: FakeBybit, home: Path, receiver: Receiver, mode: str
) -> None:
    path = play_file(home, {"min_balance": 1_000_000})
    runner, journal, _ = run(fake, home, path, mode, "08:15")
    lines = guard_lines(journal)
    notified(receiver, lines)
    assert re.fullmatch(
        r"min_balance: entries halted \(equity \d+\.\d\d below 1000000\.00 USDT\); open positions "
        r"keep their stops", lines[0]
    ), lines  # fmt: skip
    why = lines[0].split(" (", 1)[1].split("); open positions")[0]
    assert lines[1:] == [f"min_balance: short entry vetoed (halted: {why})"]
    assert position(runner, fake, mode) == ("flat", 0.0)
    st = runner.snapshot().guards
    assert st == {"min_balance": st["min_balance"]} and st["min_balance"].startswith("halted: ")
    if mode == "paper":  # halted at the first instant, the short entry vetoed at 08:00
        backtest_agrees(runner, journal, path, "08:15", ["07:45", "08:00"])


def test_require_stop_vetoes_an_entry_without_a_stop_in_paper(
    fake: FakeBybit, home: Path, receiver: Receiver
) -> None:
    path = play_file(home, {"require_stop": True}, stop_loss=None)
    runner, journal, _ = run(fake, home, path, "paper", "08:15")
    notified(receiver, guard_lines(journal))
    assert guard_lines(journal) == [
        "require_stop: short entry vetoed (the Play has no risk.stop_loss)"
    ]
    assert position(runner, fake, "paper") == ("flat", 0.0)
    backtest_agrees(runner, journal, path, "08:15", ["08:00"])


def test_require_stop_in_demo_is_refused_before_connecting(fake: FakeBybit, home: Path) -> None:
    """Demo and live refuse a Play without a stop outright (the guard can never be reached)."""
    path = play_file(home, {"require_stop": True}, stop_loss=None)
    with pytest.raises(InputError, match=r"--mode demo needs risk.stop_loss"):
        plan_session(str(path), "demo")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("account", "play", "message"),
    [
        ("max_leverage = 2", {"max_leverage": 3}, "risk.guards.max_leverage: 3.0 loosens the "
         "account's limit 2.0"),
        ("min_balance = 500", {"min_balance": 100}, "risk.guards.min_balance: 100.0 loosens the "
         "account's limit 500.0"),
        ("require_stop = true", {"require_stop": False}, "risk.guards.require_stop: False loosens "
         "the account's limit True"),
        ("max_orders_per_minute = 5", {"max_orders_per_minute": 6},
         "risk.guards.max_orders_per_minute: 6 loosens the account's limit 5"),
    ],
)  # fmt: skip
def test_a_play_cannot_loosen_the_account_limits(
    fake: FakeBybit, home: Path, account: str, play: dict[str, Any], message: str
) -> None:
    (home / ".trade").mkdir(exist_ok=True)
    (home / ".trade" / "config.toml").write_text(f"[guards]\n{account}\n")
    path = play_file(home, play)
    with pytest.raises(InputError) as err:
        plan_session(str(path), "paper")
    assert str(err.value) == (
        f"{path}: {message} ({home / '.trade' / 'config.toml'} [guards]); a Play may only "
        "tighten it"
    )
    assert fake.requests == []


def test_the_account_limits_apply_and_a_play_tightens_them(fake: FakeBybit, home: Path) -> None:
    (home / ".trade").mkdir(exist_ok=True)
    (home / ".trade" / "config.toml").write_text(
        "[guards]\nmax_position_notional = 5000\nmin_balance = 100\n"
    )
    plan = plan_session(str(play_file(home, {"max_position_notional": 2000})), "paper")
    assert (plan.guards.max_position_notional, plan.guards.min_balance) == (2000, 100)
    plan = plan_session(str(play_file(home, {})), "paper", session="other")
    assert (plan.guards.max_position_notional, plan.guards.min_balance) == (5000, 100)
    (home / ".trade" / "config.toml").write_text("[guards]\nmax_leverage = -1\n")
    with pytest.raises(InputError, match=r"config.toml: \[guards\] max_leverage: Input should be "
                       r"greater than 0 \(got -1\)"):  # fmt: skip
        plan_session(str(play_file(home, {})), "paper", session="third")
