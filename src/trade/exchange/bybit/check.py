"""Everything that must be right on a Bybit account before a session trades on it, checked with the
real endpoints: clock, keys and their permissions, account type and modes, balance, the symbol's
filters. Each problem is one line that says what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .auth import Credentials
from .errors import BybitError, ConfigError
from .rest import BybitRest, instrument_spec

CLOCK_TOLERANCE_MS = 1000  # Bybit refuses a timestamp more than 1 s ahead of its clock
UTA_STATUSES = {"5", "6"}  # unified trading account 2.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    environment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
            "problems": self.problems,
        }


def _key_problem(exc: ConfigError, creds: Credentials, other: Credentials | None) -> str:
    env, other_env = creds.environment, "live" if creds.environment == "demo" else "demo"
    if exc.code == 10003:
        if other is not None and other.api_key == creds.api_key:
            return f"key is the {other_env} key, mode is {env}: use the {env} account's key"
        hint = (
            "demo keys are made under Demo Trading on bybit.com, not on testnet"
            if env == "demo"
            else "live keys come from the main account's API management"
        )
        return (
            f"Bybit {env} refused the key (10003): invalid, expired, or a key of another "
            f"environment ({hint})"
        )
    if exc.code == 10004:
        return f"Bybit {env} refused the signature (10004): the API secret does not match the key"
    if exc.code == 10005:
        return "the key lacks a permission: enable Contract → Orders and Positions for it"
    if exc.code == 10010:
        return "the key is bound to other IP addresses: add this machine's IP to the key"
    if exc.code == 33004:
        return "the key has expired: create a new one"
    return str(exc)


async def check_account(
    client: BybitRest, symbol: str, leverage: float | None, other: Credentials | None = None
) -> Report:
    """Run every check against `client` (which carries the credentials); never raises for an
    account problem, only reports it."""
    creds = client.credentials
    assert creds is not None
    report = Report(client.environment)
    if other is not None and other.api_key == creds.api_key:
        other_env = other.environment
        report.add(
            "keys",
            False,
            f"key is the {other_env} key, mode is {creds.environment}: "
            f"use the {creds.environment} account's key",
        )
        return report
    # The first signed call goes out with the local clock; a skewed clock is recovered by the
    # client's re-sync on 10002, and reported below.
    try:
        info = await client.account_info()
    except ConfigError as exc:
        report.add("keys", False, _key_problem(exc, creds, other))
        return report
    offset = client.offset_ms if client.resyncs else await client.sync_time()
    clock_ok = abs(offset) < CLOCK_TOLERANCE_MS
    ahead = "ahead of" if offset < 0 else "behind"
    clock = f"offset {offset:+d} ms to Bybit's clock"
    if client.resyncs:
        clock += " (requests were refused with 10002 until the offset was re-synced)"
    if not clock_ok:
        clock = (
            f"local clock is {abs(offset) / 1000:.1f} s {ahead} Bybit's; signing uses the re-synced "
            f"offset, but set the system clock (NTP): {clock}"
        )
    report.add("clock", clock_ok, clock)
    report.add("keys", True, f"accepted by Bybit {creds.environment} ({creds.source})")
    if creds.environment == "live":
        report.checks.append(await _permissions(client))
    else:
        report.add("permissions", True, "not reported by Bybit demo (checked by the calls below)")
    status = str(info.get("unifiedMarginStatus", ""))
    report.add(
        "account",
        status in UTA_STATUSES,
        f"unified trading account (status {status}), margin mode {info.get('marginMode', '?')}"
        if status in UTA_STATUSES
        else f"not a unified trading account 2.0 (status {status or '?'}): upgrade it on bybit.com",
    )
    try:
        positions = await client.positions(symbol)
        spec = instrument_spec(await client.instrument(symbol), 0.005)
        wallet = await client.wallet()
    except BybitError as exc:
        report.add("account", False, str(exc))
        return report
    hedge = len(positions) > 1 or any(p.position_idx != 0 for p in positions)
    report.add(
        "position mode",
        True,
        "hedge mode on the symbol: a session switches it to one-way (needs no open position)"
        if hedge
        else "one-way",
    )
    report.add(
        "balance",
        wallet.equity > 0,
        f"USDT equity {wallet.equity:,.2f}, available {wallet.available:,.2f}"
        if wallet.equity > 0
        else "no USDT in the unified account: transfer or (demo) request funds first",
    )
    filters = (
        f"{symbol}: tick {spec.tick_size:g}, qty step {spec.qty_step:g}, min qty {spec.min_qty:g}, "
        f"min notional {spec.min_notional:g}, max leverage {spec.max_leverage:g}"
    )
    lev_ok = leverage is None or leverage <= spec.max_leverage
    if not lev_ok:
        filters += f"; the Play's leverage {leverage:g} is above it: lower account.leverage"
    report.add("symbol", lev_ok, filters)
    return report


async def _permissions(client: BybitRest) -> Check:
    info = await client.api_key_info()
    perms = info.get("permissions") or {}
    contract = set(perms.get("ContractTrade") or [])
    if str(info.get("readOnly")) == "1":
        return Check(
            "permissions", False, "the key is read-only: give it Contract → Orders, Positions"
        )
    missing = {"Order", "Position"} - contract
    if missing:
        return Check(
            "permissions",
            False,
            f"the key lacks Contract → {', '.join(sorted(missing))}: enable them for the key",
        )
    return Check("permissions", True, "Contract: " + ", ".join(sorted(contract)))
