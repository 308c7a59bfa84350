"""TRADE: backtest and trade USDT-margined perpetual futures from declarative YAML Plays."""

__version__ = "0.1.0"

__all__ = ["__version__"]
