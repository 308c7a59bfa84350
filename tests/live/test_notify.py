"""Notifications: a paper session's fills, guard actions and its start and stop reach a webhook on
127.0.0.1 through apprise's JSON target; the rate limit holds a flood back and says so; a receiver
that never answers does not hold the session up (the delivery thread waits, the session does not)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from trade.errors import InputError
from trade.live.launch import plan_session
from trade.live.notify import Notifier

from .receiver import Receiver
from .test_guards import home, play_file, receiver, run

__all__ = ["home", "receiver"]  # fixtures shared with the guard tests


def test_a_paper_session_notifies_its_fills_and_guard_actions(
    fake: FakeBybit, home: Path, receiver: Receiver
) -> None:
    runner, _, _ = run(
        fake, home, play_file(home, {"max_position_notional": 1000}), "paper", "08:15"
    )
    titles = [m["title"] for m in receiver.messages]
    bodies = receiver.bodies()
    assert titles[0] == "paper-guards: start" and titles[-1] == "paper-guards: stop"
    fills = [b for t, b in zip(titles, bodies, strict=True) if t == "paper-guards: fill"]
    assert len(fills) == 1 and fills[0].startswith("fill sell 0.009 @ 1093")
    assert any(b.startswith("max_position_notional: short entry shrunk") for b in bodies)
    assert runner.notifier is not None and runner.notifier.failed == 0
    assert runner.notifier.sent == len(receiver.messages)


def test_the_rate_limit_holds_a_flood_back_and_reports_it(receiver: Receiver) -> None:
    n = Notifier([receiver.url], "s", max_per_minute=3)
    for i in range(10):
        n.on_event(None, "rejected", f"order {i} rejected", {})
    for _ in range(3):
        n.on_event(None, "order", "not a notified kind", {})
    n.close()
    assert receiver.bodies() == [
        "order 0 rejected",
        "order 1 rejected",
        "order 2 rejected",
        "7 message(s) held back by the rate limit; the session journal has them all",
    ]


def test_an_identical_message_goes_out_once_a_minute(receiver: Receiver) -> None:
    n = Notifier([receiver.url], "s", max_per_minute=10)
    for _ in range(5):
        n.on_event(None, "stream_error", "private stream: keys refused", {})
    n.close()
    assert receiver.bodies()[0] == "private stream: keys refused"
    assert receiver.bodies()[1:] == [
        "4 message(s) held back by the rate limit; the session journal has them all"
    ]


@pytest.fixture
def dead_receiver() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"json://127.0.0.1:{sock.getsockname()[1]}/hook?rto=600&cto=600"
    sock.close()


def test_a_dead_receiver_does_not_hold_the_session_up(
    fake: FakeBybit, home: Path, dead_receiver: str
) -> None:
    (home / ".trade" / "config.toml").write_text(f'[notify]\nurls = ["{dead_receiver}"]\n')
    runner, journal, _ = run(fake, home, play_file(home, {"max_position_notional": 1000}),
                             "paper", "09:00")  # fmt: skip
    # every minute was handled in turn (the driver waits at most 60 s for each, the receiver
    # holds a delivery for 600 s) while the delivery thread was still stuck on the first message
    assert runner.last_instant is not None and runner.handled_close >= runner.last_instant
    n = runner.notifier
    assert n is not None and (n.sent, n.failed) == (0, 0)
    assert n.queue.qsize() + 1 >= sum(1 for j in journal if j["kind"] in ("guard", "stop"))


def test_a_bad_notify_table_is_refused_before_connecting(fake: FakeBybit, home: Path) -> None:
    (home / ".trade" / "config.toml").write_text('[notify]\nurls = "json://x"\n')
    with pytest.raises(InputError, match=r"config.toml: \[notify\] urls: expected a list"):
        plan_session("ema_cross", "paper")
    (home / ".trade" / "config.toml").write_text('[notify]\nurls = ["nothing://here"]\n')
    with pytest.raises(
        InputError, match=r"config.toml: \[notify\] urls: nothing://…: not an apprise"
    ):
        plan_session("ema_cross", "paper")
    assert fake.requests == []
