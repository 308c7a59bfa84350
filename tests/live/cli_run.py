"""Run the `trade` command in a fresh process, as a user in a second terminal would."""

from __future__ import annotations

import subprocess
import sys


def trade(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trade.cli.main", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
