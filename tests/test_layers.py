"""The layering rules of the architecture guide, checked on the source: the engine knows no I/O,
and the exchange client knows no strategy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trade"
FORBIDDEN = {
    "engine": {"trade.live", "trade.exchange"},
    "exchange": {"trade.engine", "trade.live", "trade.sim", "trade.play", "trade.features"},
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    files = sorted((SRC / layer).rglob("*.py"))
    assert files
    bad = [
        f"{f.relative_to(SRC)} imports {m}"
        for f in files
        for m in sorted(imported_modules(f))
        if any(m == x or m.startswith(x + ".") for x in FORBIDDEN[layer])
    ]
    assert bad == []


def test_the_checker_sees_relative_imports() -> None:
    names = imported_modules(SRC / "exchange" / "bybit" / "rest.py")
    assert "trade.instruments" in names and "trade.exchange.bybit.errors" in names
