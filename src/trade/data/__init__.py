"""Market data: the DuckDB store, Bybit history sync, gaps, resampling and synthetic markets."""
