"""The `trade` command line: the only layer that turns errors into exit codes and messages."""
