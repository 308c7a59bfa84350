"""The project's exception hierarchy.

Library code raises one of these precise exceptions; only the CLI turns them into exit codes and
one-line messages (exit 2 for bad input, 1 for internal errors). Nothing here is ever swallowed.
"""

from __future__ import annotations


class TradeError(Exception):
    """Base class for every error the system raises on purpose."""

    exit_code = 1


class InputError(TradeError):
    """The user gave something invalid (a file, a flag, a value). Exit code 2."""

    exit_code = 2


class PlayError(InputError):
    """A Play failed to load, validate or type-check.

    `problems` holds every problem found as `file:line: key.path: message` lines, so a validator
    can report them all at once instead of stopping at the first.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DataError(InputError):
    """Market data is missing, malformed or inconsistent for the requested window."""


class SimulationError(TradeError):
    """The simulated exchange was driven in a way its semantics do not allow (a bug in the caller)."""


class ExchangeError(TradeError):
    """A real or fake exchange answered with an error that could not be recovered by retrying."""
