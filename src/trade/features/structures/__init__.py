"""Market structure detectors (filled by the structure registry)."""

from __future__ import annotations

from ..catalog import FeatureCatalog


def register_structures(catalog: FeatureCatalog) -> None:
    """Add every structure detector's FeatureSpec to `catalog`."""
