"""Option parsing and default output names shared by several commands."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from ..errors import InputError


def output_name(prefix: str) -> str:
    """`<prefix>-<UTC second>-<6 hex digits>`: a default output that two commands started in the
    same second never share (a shared sweep directory would be resumed by both at once)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`--set name=value` pairs → {name: value}; a malformed pair is an input error."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set {item!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out
