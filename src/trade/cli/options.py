"""Option parsing shared by several commands."""

from __future__ import annotations

from ..errors import InputError


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """`--set name=value` pairs → {name: value}; a malformed pair is an input error."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set {item!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out
