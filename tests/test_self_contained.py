"""The repository stands alone: nothing it ships reads a directory beside it or on this machine."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# built from parts so that this file does not match itself
OUTSIDE = re.compile("|".join(["/" + "work/", r"\.\./" + "shared", '"shared" ' + '/ "data"']))


def tracked_text_files() -> list[Path]:
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    names = done.stdout.split("\0") if done.returncode == 0 else []
    if not any(names):  # not a git checkout (an archive): every file under the tree
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    binary = (".gz", ".parquet", ".png", ".pyc", ".duckdb")
    generated = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
    return [
        ROOT / n
        for n in names
        if n
        and not n.endswith(binary)
        and not generated & set(Path(n).parts)
        and ".egg-info" not in n
        and not n.startswith("runs/")
    ]


def test_no_file_points_outside_the_repository() -> None:
    hits = []
    for path in tracked_text_files():
        if path.is_file():
            text = path.read_text(errors="replace")
            hits += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert hits == []


def test_market_fixtures_are_inside_the_tests_and_checksummed(market_dir: Path) -> None:
    assert market_dir.resolve().is_relative_to(ROOT / "tests")
    sums = (market_dir / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums}
    present = {p.name for p in market_dir.iterdir()} - {"README.md", "SHA256SUMS"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((market_dir / name).read_bytes()).hexdigest() == digest, name
