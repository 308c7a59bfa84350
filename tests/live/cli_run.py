"""Run the `trade` command in a fresh process, as a user in a second terminal would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fakes.bybit import FakeBybit
from trade.data import MarketStore

KEYS = (
    "BYBIT_DEMO_API_KEY",
    "BYBIT_DEMO_API_SECRET",
    "BYBIT_LIVE_API_KEY",
    "BYBIT_LIVE_API_SECRET",
)


def process_env(
    home: Path, fake: FakeBybit, *, demo_keys: bool = False, sample: bool = True, **extra: str
) -> dict[str, str]:
    """The environment of a `trade` process: HOME and its market store (with the bundled sample
    unless `sample=False`), the fake exchange's URLs, no API keys of the user's but, with
    `demo_keys`, the fake's demo keys."""
    db = home / "market.duckdb"
    if sample:
        with MarketStore(db) as store:
            store.ensure_sample()
    out = {k: v for k, v in os.environ.items() if k not in KEYS}
    out |= {"HOME": str(home), "TRADE_DB": str(db), **fake.env(), **extra}
    if demo_keys:
        out |= {"BYBIT_DEMO_API_KEY": fake.api_key, "BYBIT_DEMO_API_SECRET": fake.api_secret}
    return out


def trade(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trade.cli.main", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def drawn(screen: Callable[[], str], pattern: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the panel has drawn `pattern`: it redraws a few times a second from its own thread,
    which a loaded machine may hold back for longer than a fixed pause."""
    deadline = time.monotonic() + 60
    while not re.search(pattern, screen()) and time.monotonic() < deadline:
        assert proc.poll() is None, screen()[-3000:]
        time.sleep(0.05)
