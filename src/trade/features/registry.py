"""The default feature catalog: every indicator and structure detector the DSL may reference."""

from __future__ import annotations

from functools import cache

from .catalog import FeatureCatalog
from .indicators import register_indicators
from .structures import register_structures


@cache
def default_catalog() -> FeatureCatalog:
    catalog = FeatureCatalog()
    register_indicators(catalog)
    register_structures(catalog)
    return catalog
