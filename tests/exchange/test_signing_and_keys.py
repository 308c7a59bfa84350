"""The signer agrees with Bybit's official SDK (pybit, a test-only dependency), keys load from the
right places and never print, and everything Bybit sends is checked before it is used."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from pybit._http_manager import _V5HTTPManager, generate_signature

from trade.errors import ExchangeError, InputError
from trade.exchange.bybit import Credentials, Kline, load_credentials
from trade.exchange.bybit.auth import rest_headers, sign, ws_auth_message
from trade.exchange.bybit.environment import endpoints
from trade.exchange.bybit.models import Execution, number

KEY, SECRET = "XyZkEy0123456789", "SeCrEt-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
CREDS = Credentials("demo", KEY, SECRET)


def pybit_signature(payload: str, timestamp: int, recv_window: int = 5000) -> str:
    """pybit's own `_auth` on the same inputs."""
    manager = _V5HTTPManager.__new__(_V5HTTPManager)
    manager.api_key, manager.api_secret, manager.rsa_authentication = KEY, SECRET, False
    return manager._auth(payload, recv_window, timestamp)


@pytest.mark.parametrize(
    "payload",
    [
        str(httpx.QueryParams({"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "a-b_1"})),
        str(httpx.QueryParams({"accountType": "UNIFIED", "coin": "USDT"})),
        "",
    ],
)
def test_get_signature_equals_pybit(payload: str) -> None:
    headers = rest_headers(CREDS, 1_700_000_000_123, payload)
    assert headers["X-BAPI-SIGN"] == pybit_signature(payload, 1_700_000_000_123)
    assert headers["X-BAPI-TIMESTAMP"] == "1700000000123"
    assert headers["X-BAPI-RECV-WINDOW"] == "5000"
    assert headers["X-BAPI-API-KEY"] == KEY


def test_post_signature_equals_pybit() -> None:
    body = json.dumps(
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.001",
            "orderLinkId": "s1-d42-entry",
            "stopLoss": "41000.5",
        },
        separators=(",", ":"),
    )
    for ts, rw in ((1_700_000_000_000, 5000), (1_712_345_678_901, 20000)):
        got = rest_headers(CREDS, ts, body, recv_window=rw)["X-BAPI-SIGN"]
        assert got == pybit_signature(body, ts, rw)


def test_ws_auth_signs_get_realtime_with_expires() -> None:
    msg = ws_auth_message(CREDS, 1_700_000_010_000)
    assert msg["op"] == "auth"
    assert msg["args"] == [
        KEY,
        1_700_000_010_000,
        generate_signature(False, SECRET, "GET/realtime1700000010000"),
    ]
    assert sign(SECRET, "GET/realtime1700000010000") == msg["args"][2]


def test_credentials_never_show_in_repr_or_str() -> None:
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", repr([CREDS])):
        assert KEY not in text and SECRET not in text
    assert CREDS.redact(f"echo {KEY} and {SECRET}") == "echo <redacted> and <redacted>"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "BYBIT_DEMO_API_KEY",
        "BYBIT_DEMO_API_SECRET",
        "BYBIT_LIVE_API_KEY",
        "BYBIT_LIVE_API_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_keys_from_the_environment_are_per_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BYBIT_DEMO_API_KEY", KEY)
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", SECRET)
    demo = load_credentials("demo")
    assert (demo.environment, demo.api_key, demo.api_secret) == ("demo", KEY, SECRET)
    with pytest.raises(
        InputError,
        match=r"no live API keys: set BYBIT_LIVE_API_KEY and "
        r"BYBIT_LIVE_API_SECRET",
    ):
        load_credentials("live")
    monkeypatch.setenv("BYBIT_LIVE_API_KEY", "k")
    with pytest.raises(InputError, match=r"^BYBIT_LIVE_API_SECRET is not set"):
        load_credentials("live")


def test_credentials_file_is_refused_when_others_can_read_it(home: Path) -> None:
    path = home / ".trade" / "credentials.toml"
    path.parent.mkdir()
    path.write_text(f'[live]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    os.chmod(path, 0o644)
    with pytest.raises(InputError) as err:
        load_credentials("live")
    assert (
        str(err.value)
        == f"{path}: readable by other users (mode 644); run `chmod 600 {path}` first"
    )
    os.chmod(path, 0o600)
    live = load_credentials("live")
    assert (live.api_key, live.api_secret, live.source) == (KEY, SECRET, str(path))
    with pytest.raises(InputError, match=r"no \[demo\] table"):
        load_credentials("demo")
    path.write_text(f'[live]\napi_key = "{KEY}"\napi_secret = "{SECRET}\n')  # unterminated
    with pytest.raises(InputError) as err:
        load_credentials("live")
    assert "not valid TOML" in str(err.value) and SECRET not in str(err.value)


def test_hosts_per_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TRADE_BYBIT_REST_URL", "TRADE_BYBIT_WS_PUBLIC_URL", "TRADE_BYBIT_WS_PRIVATE_URL"):
        monkeypatch.delenv(var, raising=False)
    demo, live = endpoints("demo"), endpoints("live")
    assert demo.rest == "https://api-demo.bybit.com"
    assert demo.ws_private == "wss://stream-demo.bybit.com/v5/private"
    assert demo.ws_public == live.ws_public == "wss://stream.bybit.com/v5/public/linear"
    assert live.rest == "https://api.bybit.com"
    monkeypatch.setenv("TRADE_BYBIT_REST_URL", "http://127.0.0.1:9/")
    assert endpoints("demo").rest == "http://127.0.0.1:9"
    monkeypatch.setenv("TRADE_BYBIT_REST_URL", "ftp://example")
    with pytest.raises(
        InputError,
        match=r"^TRADE_BYBIT_REST_URL='ftp://example': expected an http:// or https:// URL with a host$",
    ):
        endpoints("live")


def test_values_from_bybit_are_checked() -> None:
    good = ["1700000000000", "100", "101", "99", "100.5", "12", "1206"]
    assert Kline.from_row(good, "BTCUSDT 1m kline", closed=True).close == 100.5
    with pytest.raises(ExchangeError, match=r"BTCUSDT 1m kline start = 'abc': not a timestamp"):
        Kline.from_row(["abc", *good[1:]], "BTCUSDT 1m kline", closed=True)
    with pytest.raises(ExchangeError, match=r"not a millisecond timestamp"):
        Kline.from_row(["1700000000", *good[1:]], "BTCUSDT 1m kline", closed=True)
    with pytest.raises(ExchangeError, match=r"kline\[4\] = 'inf': out of range"):
        Kline.from_row([*good[:4], "inf", *good[5:]], "BTCUSDT 1m kline", closed=True)
    with pytest.raises(ExchangeError, match=r"inconsistent"):
        Kline.from_row([good[0], "100", "99", "98", "100", "1", "1"], "k", closed=True)
    with pytest.raises(ExchangeError, match=r"execution without 'execId'"):
        Execution.parse({"symbol": "BTCUSDT", "execTime": "1700000000000"})
    assert number("", "x", empty=0.0) == 0.0
    with pytest.raises(ExchangeError, match=r"= '1e400': out of range"):
        number("1e400", "price")
