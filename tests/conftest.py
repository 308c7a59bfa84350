"""Shared fixtures: the real market data the tests read, committed under tests/fixtures/market."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from trade import jitnotice

MARKET_DIR = Path(__file__).resolve().parent / "fixtures" / "market"


@pytest.fixture(scope="session")
def market_dir() -> Path:
    """Trimmed real Bybit files (see the README beside them); never a directory outside the tree."""
    return MARKET_DIR


@pytest.fixture(autouse=True)
def _no_compile_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs print no compile notice: which test first compiles a kernel depends on
    the order the tests run in (and on the cache), and no stderr assertion may depend on that.
    The notice has tests of its own (tests/test_first_run.py, in fresh processes)."""
    monkeypatch.setattr(jitnotice, "compile_notice", lambda say: contextlib.nullcontext())
