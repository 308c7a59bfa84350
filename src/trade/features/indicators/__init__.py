"""Indicator definitions (filled by the indicator registry)."""

from __future__ import annotations

from ..catalog import FeatureCatalog


def register_indicators(catalog: FeatureCatalog) -> None:
    """Add every indicator's FeatureSpec to `catalog`."""
