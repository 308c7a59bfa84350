"""A small real feature catalog for DSL tests, independent of the indicator implementations."""

from __future__ import annotations

from trade.features.catalog import FeatureCatalog, FeatureSpec, OutputSpec, ParamSpec, ValueKind

LEN = ParamSpec("length", int, 14, min=1, max=10_000)
DIRS = ("none", "bullish", "bearish")


def test_catalog() -> FeatureCatalog:
    return FeatureCatalog(
        [
            FeatureSpec(
                "ema",
                "indicator",
                (LEN,),
                (OutputSpec("value"),),
                lambda p: p["length"],
                has_source=True,
            ),
            FeatureSpec(
                "rsi",
                "indicator",
                (LEN,),
                (OutputSpec("value"),),
                lambda p: p["length"] + 1,
                has_source=True,
            ),
            FeatureSpec("atr", "indicator", (LEN,), (OutputSpec("value"),), lambda p: p["length"]),
            FeatureSpec(
                "bbands",
                "indicator",
                (ParamSpec("length", int, 20, min=2), ParamSpec("std", float, 2.0, min=0.0)),
                tuple(
                    OutputSpec(n) for n in ("lower", "middle", "upper", "bandwidth", "percent_b")
                ),
                lambda p: p["length"],
                has_source=True,
            ),
            FeatureSpec(
                "swing",
                "structure",
                (ParamSpec("left", int, 3, min=1), ParamSpec("right", int, 3, min=1)),
                (
                    OutputSpec("high_level"),
                    OutputSpec("low_level"),
                    OutputSpec("high_idx", ValueKind.INT),
                    OutputSpec("pivot_this_bar", ValueKind.BOOL),
                    OutputSpec("last_pivot_type", ValueKind.ENUM, ("none", "high", "low")),
                ),
                lambda p: p["left"] + p["right"] + 1,
            ),
            FeatureSpec(
                "market_structure",
                "structure",
                (ParamSpec("confirmation", str, "close", choices=("wick", "close")),),
                (
                    OutputSpec("bias", ValueKind.ENUM, DIRS),
                    OutputSpec("bos_this_bar", ValueKind.BOOL),
                    OutputSpec("bos_direction", ValueKind.ENUM, DIRS),
                ),
                lambda p: 0,
                uses=("swing",),
            ),
            FeatureSpec(
                "fibonacci",
                "structure",
                (ParamSpec("levels", list, (0.382, 0.618)),),
                lambda p: (
                    *(OutputSpec(f"level[{r:g}]") for r in p["levels"]),
                    OutputSpec("range"),
                ),
                lambda p: 0,
                uses=("swing",),
            ),
        ]
    )
