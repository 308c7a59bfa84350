"""API keys and Bybit's HMAC-SHA256 signatures.

Keys never travel as plain strings: `Credentials` prints as `<redacted>` in every repr, and
`redact()` scrubs a key or secret out of any text before it reaches a message. Demo and live keys live
in separate variables (`BYBIT_DEMO_API_KEY` / `BYBIT_DEMO_API_SECRET`, `BYBIT_LIVE_API_KEY` /
`BYBIT_LIVE_API_SECRET`) or in `~/.trade/credentials.toml` (`[demo]` and `[live]` tables with
`api_key` and `api_secret`), which is refused when group- or world-readable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import InputError

ENVIRONMENTS = ("demo", "live")
DEFAULT_RECV_WINDOW = 5000


@dataclass(frozen=True)
class Credentials:
    """One API key pair of one environment; its repr shows neither part."""

    environment: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    source: str = "environment"

    def __repr__(self) -> str:
        return f"Credentials({self.environment}, from {self.source}, key <redacted>)"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """`text` with this key and secret replaced by `<redacted>`."""
        for s in (self.api_secret, self.api_key):
            if s:
                text = text.replace(s, "<redacted>")
        return text


def credentials_path() -> Path:
    return Path.home() / ".trade" / "credentials.toml"


def env_names(environment: str) -> tuple[str, str]:
    up = environment.upper()
    return f"BYBIT_{up}_API_KEY", f"BYBIT_{up}_API_SECRET"


def load_credentials(environment: str) -> Credentials:
    """The keys of `environment` (demo or live): variables first, then the credentials file.

    Raises InputError naming what to set when none are found or the file is unsafe."""
    if environment not in ENVIRONMENTS:
        raise InputError(f"environment {environment!r}: expected demo or live")
    key_var, secret_var = env_names(environment)
    key, secret = os.environ.get(key_var, ""), os.environ.get(secret_var, "")
    if key and secret:
        return Credentials(environment, key, secret, "environment")
    if key or secret:
        missing = secret_var if key else key_var
        raise InputError(f"{missing} is not set ({key_var} and {secret_var} go together)")
    path = credentials_path()
    if path.exists():
        return _from_file(path, environment)
    raise InputError(
        f"no {environment} API keys: set {key_var} and {secret_var}, "
        f"or add a [{environment}] table to {path} (mode 600)"
    )


def _from_file(path: Path, environment: str) -> Credentials:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"{path}: readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}` first"
        )
    try:
        table = tomllib.loads(path.read_text()).get(environment)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # the decoder's message quotes no values, only positions
        raise InputError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    if not isinstance(table, dict):
        raise InputError(f"{path}: no [{environment}] table with api_key and api_secret")
    key, secret = table.get("api_key"), table.get("api_secret")
    if not (isinstance(key, str) and key and isinstance(secret, str) and secret):
        raise InputError(f"{path}: [{environment}] needs non-empty api_key and api_secret strings")
    return Credentials(environment, key, secret, str(path))


def sign(secret: str, payload: str) -> str:
    """Bybit's HMAC-SHA256 signature, lowercase hex."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def rest_headers(
    creds: Credentials, timestamp_ms: int, payload: str, recv_window: int = DEFAULT_RECV_WINDOW
) -> dict[str, str]:
    """Headers of a signed request; `payload` is the exact query string (GET) or body (POST)."""
    ts = str(timestamp_ms)
    return {
        "X-BAPI-API-KEY": creds.api_key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": str(recv_window),
        "X-BAPI-SIGN": sign(creds.api_secret, ts + creds.api_key + str(recv_window) + payload),
        "X-BAPI-SIGN-TYPE": "2",
    }


def ws_auth_message(creds: Credentials, expires_ms: int) -> dict[str, object]:
    """The private stream's `auth` operation, valid until `expires_ms` (exchange time)."""
    signature = sign(creds.api_secret, f"GET/realtime{expires_ms}")
    return {"op": "auth", "args": [creds.api_key, expires_ms, signature]}
