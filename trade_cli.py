"""Run the `trade` CLI from a checkout: `python trade_cli.py …` equals `trade …`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from trade.cli.main import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
