"""PlayEngine: the as-of clock, feature alignment, rule evaluation and decisions.

The engine never calls an exchange, sleeps or reads a clock: runners feed it closed bars and hand its
decisions to an execution adapter (the simulator in backtest/replay/paper, Bybit in demo/live).
"""
