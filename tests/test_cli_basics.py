import subprocess
import sys
from pathlib import Path

from trade import __version__
from trade.cli.main import run

ROOT = Path(__file__).resolve().parents[1]


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"trade {__version__}"


def test_unknown_command_exits_2(capsys):
    assert run(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_trade_cli_script_runs_same_cli():
    out = subprocess.run(
        [sys.executable, str(ROOT / "trade_cli.py"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"trade {__version__}"
