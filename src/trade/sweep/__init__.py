"""Parameter sweeps, searches and walk-forward over a Play's variables, with overfitting
diagnostics. Runs on the fast path; never opens the market store outside the parent process."""
