"""Where each environment's REST and WebSocket endpoints are.

Demo and live differ only in hosts, and demo's public stream is mainnet's (Bybit's demo stream has no
public topics). `TRADE_BYBIT_REST_URL`, `TRADE_BYBIT_WS_PUBLIC_URL` and `TRADE_BYBIT_WS_PRIVATE_URL`
override every environment's hosts: tests point them at a fake exchange on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...errors import InputError

MAINNET_PUBLIC = "wss://stream.bybit.com/v5/public/linear"


@dataclass(frozen=True)
class Endpoints:
    environment: str
    rest: str
    ws_public: str
    ws_private: str


HOSTS = {
    "live": Endpoints(
        "live", "https://api.bybit.com", MAINNET_PUBLIC, "wss://stream.bybit.com/v5/private"
    ),
    "demo": Endpoints(
        "demo",
        "https://api-demo.bybit.com",
        MAINNET_PUBLIC,
        "wss://stream-demo.bybit.com/v5/private",
    ),
}


def endpoints(environment: str = "live") -> Endpoints:
    """The environment's endpoints after the `TRADE_BYBIT_*` overrides, each checked for scheme."""
    if environment not in HOSTS:
        raise InputError(f"environment {environment!r}: expected demo or live")
    base = HOSTS[environment]
    return Endpoints(
        environment,
        _checked("TRADE_BYBIT_REST_URL", base.rest, ("http", "https")).rstrip("/"),
        _checked("TRADE_BYBIT_WS_PUBLIC_URL", base.ws_public, ("ws", "wss")),
        _checked("TRADE_BYBIT_WS_PRIVATE_URL", base.ws_private, ("ws", "wss")),
    )


def _checked(var: str, default: str, schemes: tuple[str, ...]) -> str:
    url = os.environ.get(var) or default
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise InputError(f"{var}={url[:200]!r}: expected an {wanted} URL with a host")
    return url
