"""`trade dashboard` in headless Chromium against a running paper session fed by the fake exchange:
the page shows the session's position, equity and the fill marker of its entry, and updates them
by server-sent events after new bars; without the URL's token every request is refused. Needs
Debian's `chromium`; marked `browser` (run by .ci/run)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from report.test_html_browser import FLAGS, chromium
from trade.data import MarketStore
from trade.engine.backtest import parse_time

from .test_play_control_cli import env, fake, meta

__all__ = ["env", "fake"]  # fixtures shared with the control tests
pytestmark = pytest.mark.browser

READ = """(function () {
  var s = document.querySelector('[data-session="dash"]');
  if (!s || !window.dash.sessions.dash) return null;
  function f(k) { return s.querySelector('[data-field="' + k + '"]').textContent; }
  return { state: f("state"), position: f("position"), stop: f("stop"), equity: f("equity"),
    last_bar: f("last_bar"), markers: window.dash.sessions.dash.markers.markers(),
    candles: window.dash.sessions.dash.candles.data().length,
    journal: s.querySelectorAll('[data-list="journal"] li').length };
})()"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline, url = time.monotonic() + 60, None
        while url is None:
            assert time.monotonic() < deadline, "Chromium printed no DevTools address"
            if select.select([self.proc.stderr], [], [], 1)[0]:
                m = re.search(r"DevTools listening on (ws://\S+)", self.proc.stderr.readline())
                url = m.group(1) if m else None
        self.url = url
        self.ws: Any = None  # the DevTools socket, opened by the fixture
        self.n = 0

    def call(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        self.n += 1
        msg: dict[str, Any] = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            answer = json.loads(self.ws.recv(timeout=60))
            if answer.get("id") == self.n:
                assert "error" not in answer, answer
                return answer["result"]

    def open(self, url: str) -> str:
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

    def eval(self, session: str, expression: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                      session)  # fmt: skip
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def until(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    b = Chromium(tmp_path / "profile")
    try:
        with connect(b.url, max_size=None) as ws:
            b.ws = ws
            yield b
    finally:
        b.close()


def test_the_dashboard_shows_a_running_session_and_follows_it(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, browser: Chromium
) -> None:
    start, first, more = (parse_time(f"2025-06-11T{h}", "s") for h in ("06:00", "08:30", "09:00"))
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", ["15m", "1h", "4h"], start, more)
        day.load_history()
    session = tmp_path / ".trade" / "sessions" / "dash.sqlite"
    run = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", "play", "run", "--play", "ema_cross",
         "--mode", "paper", "--session", "dash", "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    procs = [run]
    played: list[int] = []
    try:

        async def wait(close: int) -> None:
            if close % (15 * 60_000) or close <= start:
                return
            deadline = time.monotonic() + 60
            while int(meta(session, "last_instant") or 0) < close:
                assert run.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.02)

        async def play(upto: int) -> None:
            deadline = time.monotonic() + 60
            while not any(c["topics"] for c in fake.connections):
                assert run.poll() is None and time.monotonic() < deadline, "never subscribed"
                await asyncio.sleep(0.05)
            for m in day.minutes():
                if m + 60_000 > upto:
                    return
                if m not in played:
                    await day.play_minute(m, wait)
                    played.append(m)

        asyncio.run(play(first))
        dash = subprocess.Popen(
            [sys.executable, "-m", "trade.cli.main", "dashboard", "--port", "0"],
            env=env | {"COLUMNS": "300"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        procs.append(dash)
        assert dash.stdout is not None
        line = dash.stdout.readline()
        m = re.fullmatch(r"dashboard on (http://127\.0\.0\.1:(\d+)/)\?token=([\w-]+)\n", line)
        assert m, line
        base, token = m.group(1), m.group(3)
        for bad in (base, f"{base}?token=wrong", f"{base}api/sessions", f"{base}events?token=x"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(bad, timeout=30)
            assert err.value.code == 403
        page = browser.open(f"{base}?token={token}")

        def shown(check: Any) -> Any:
            def probe() -> Any:
                got = browser.eval(page, READ)
                return got if got and check(got) else None

            return probe

        seen = until("the open short", shown(lambda s: s["position"].startswith("short")))
        assert seen["state"] == "running"
        assert seen["position"] == "short 0.091 @ 109,359.62"
        assert seen["stop"] == "112,640.40"
        assert re.fullmatch(r"9,9\d\d\.\d\d", seen["equity"]), seen
        assert seen["last_bar"] == "15m 2025-06-11 08:15 close 109,486.50"
        # the entry's fill, marked on the price chart at 08:00
        assert seen["markers"] == [
            {"time": parse_time("2025-06-11T08:00", "s") // 1000, "position": "aboveBar",
             "shape": "arrowDown", "color": "#c62828", "text": "sell 0.091 @ 109359.62"}
        ]  # fmt: skip
        assert seen["candles"] >= 150 and seen["journal"] > 0

        asyncio.run(play(more))  # 30 more minutes: the page follows without a reload
        later = until(
            "the bars after 08:30",
            shown(lambda s: s["last_bar"].startswith("15m 2025-06-11 08:45")),
        )
        assert later["equity"] != seen["equity"]
        assert later["candles"] == seen["candles"] + 30
        assert later["position"] == seen["position"] and len(later["markers"]) == 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(30)
    assert os.path.exists(session)
