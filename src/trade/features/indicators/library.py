"""The indicator table: for each indicator its params, outputs, state size, warmup and step.

`warmup(p)` is the number of bars before the first valid value (what the engine loads before a
window). Recursive indicators (EMA family, Wilder smoothing) are valid from there but keep converging;
`trade backtest audit-warmup` measures how much more history a Play needs for a given tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import OutputSpec, ParamSpec, ValueKind
from . import steps as S

L = "length"


def _len(default: int, minimum: int = 1) -> ParamSpec:
    return ParamSpec(L, int, default, min=minimum, max=100_000, doc="period in bars")


def _int(name: str, default: int, minimum: int = 1) -> ParamSpec:
    return ParamSpec(name, int, default, min=minimum, max=100_000)


def _flt(name: str, default: float, minimum: float = 0.0, maximum: float = 1e6) -> ParamSpec:
    return ParamSpec(name, float, default, min=minimum, max=maximum)


def _outs(*names: str) -> tuple[OutputSpec, ...]:
    return tuple(OutputSpec(n) for n in names)


VALUE = _outs("value")


@dataclass(frozen=True)
class IndicatorDef:
    name: str
    run: Any  # numba dispatcher: the one definition (see steps.py)
    params: tuple[ParamSpec, ...]
    outputs: tuple[OutputSpec, ...]
    state_size: Callable[[Mapping[str, Any]], int]
    warmup: Callable[[Mapping[str, Any]], int]
    has_source: bool = False
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    doc: str = ""

    def encode(self, params: Mapping[str, Any], source: str | None) -> list[float]:
        """Params as the float array the step reads (source code last for single-series ones)."""
        vals: list[float] = []
        for p in self.params:
            v = params[p.name]
            if p.name == "anchor":
                v = {"D": 0.0, "W": 1.0}[v]
            vals.append(float(v))
        if self.has_source:
            vals.append(float(SOURCES.index(source or "close")))
        return vals


SOURCES = ("close", "open", "high", "low", "volume", "hl2", "hlc3", "ohlc4")


def _fast_slow(p: Mapping[str, Any]) -> str | None:
    return (
        None
        if p["fast"] < p["slow"]
        else f"fast ({p['fast']}) must be less than slow ({p['slow']})"
    )


def _trima_halves(n: int) -> tuple[int, int]:
    return ((n + 1) // 2, (n + 1) // 2) if n % 2 else (n // 2, n // 2 + 1)


def _defs() -> list[IndicatorDef]:
    n = lambda p: int(p[L])  # noqa: E731
    return [
        # moving averages
        IndicatorDef(
            "ema",
            S.ema_run,
            (_len(20),),
            VALUE,
            lambda p: 3,
            lambda p: n(p) - 1,
            True,
            doc="EMA seeded with the SMA of the first `length` values (TA-Lib)",
        ),
        IndicatorDef(
            "sma",
            S.sma_run,
            (_len(20),),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            True,
            doc="simple moving average",
        ),
        IndicatorDef(
            "wma",
            S.wma_run,
            (_len(20),),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            True,
            doc="linearly weighted moving average",
        ),
        IndicatorDef(
            "dema",
            S.dema_run,
            (_len(20),),
            VALUE,
            lambda p: 6,
            lambda p: 2 * (n(p) - 1),
            True,
            doc="2·EMA − EMA(EMA)",
        ),
        IndicatorDef(
            "tema",
            S.tema_run,
            (_len(20),),
            VALUE,
            lambda p: 9,
            lambda p: 3 * (n(p) - 1),
            True,
            doc="3·EMA − 3·EMA² + EMA³",
        ),
        IndicatorDef(
            "trima",
            S.trima_run,
            (_len(20, 2),),
            VALUE,
            lambda p: 4 + sum(_trima_halves(n(p))),
            lambda p: sum(_trima_halves(n(p))) - 2,
            True,
            doc="SMA of an SMA (TA-Lib halves)",
        ),
        IndicatorDef(
            "zlma",
            S.zlma_run,
            (_len(20),),
            VALUE,
            lambda p: 6 + (n(p) - 1) // 2,
            lambda p: (n(p) - 1) // 2 + n(p) - 1,
            True,
            doc="zero-lag EMA: EMA of 2·x − x[(length−1)/2]",
        ),
        IndicatorDef(
            "kama",
            S.kama_run,
            (_len(10),),
            VALUE,
            lambda p: 3 + n(p) + 1,
            lambda p: n(p),
            True,
            doc="Kaufman adaptive MA (fast 2, slow 30; TA-Lib)",
        ),
        IndicatorDef(
            "alma",
            S.alma_run,
            (_len(9), _flt("sigma", 6.0, 0.01), _flt("offset", 0.85, 0.0, 1.0)),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            True,
            doc="Arnaud Legoux MA (gaussian weights)",
        ),
        IndicatorDef(
            "linreg",
            S.linreg_run,
            (_len(14, 2),),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            True,
            doc="least-squares line's value at the last bar (TA-Lib LINEARREG)",
        ),
        IndicatorDef(
            "vwap",
            S.vwap_run,
            (ParamSpec("anchor", str, "D", choices=("D", "W")),),
            VALUE,
            lambda p: 3,
            lambda p: 0,
            doc="volume-weighted hlc3 since the UTC day (D) or week (W, Monday) start",
        ),
        # oscillators
        IndicatorDef(
            "rsi",
            S.rsi_run,
            (_len(14),),
            VALUE,
            lambda p: 7,
            lambda p: n(p),
            True,
            doc="Wilder RSI (TA-Lib)",
        ),
        IndicatorDef(
            "cci",
            S.cci_run,
            (_len(20, 2),),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            doc="commodity channel index on hlc3",
        ),
        IndicatorDef(
            "willr",
            S.willr_run,
            (_len(14),),
            VALUE,
            lambda p: 4 + 2 * n(p),
            lambda p: n(p) - 1,
            doc="Williams %R",
        ),
        IndicatorDef(
            "cmo",
            S.cmo_run,
            (_len(14),),
            VALUE,
            lambda p: 7,
            lambda p: n(p),
            True,
            doc="Chande momentum oscillator (Wilder-smoothed, TA-Lib)",
        ),
        IndicatorDef(
            "mfi",
            S.mfi_run,
            (_len(14),),
            VALUE,
            lambda p: 5 + 2 * n(p),
            lambda p: n(p),
            doc="money flow index",
        ),
        IndicatorDef(
            "uo",
            S.uo_run,
            (_int("fast", 7), _int("medium", 14), _int("slow", 28)),
            VALUE,
            lambda p: 5 + 2 * int(p["slow"]),
            lambda p: int(p["slow"]),
            check=lambda p: (
                None if p["fast"] < p["medium"] < p["slow"] else "needs fast < medium < slow"
            ),
            doc="ultimate oscillator (TA-Lib ULTOSC)",
        ),
        IndicatorDef(
            "stoch",
            S.stoch_run,
            (_int("k", 14), _int("d", 3), _int("smooth_k", 3)),
            _outs("k", "d"),
            lambda p: 8 + 2 * int(p["k"]) + int(p["smooth_k"]) + int(p["d"]),
            lambda p: int(p["k"]) + int(p["smooth_k"]) + int(p["d"]) - 3,
            doc="slow stochastic (SMA smoothing, TA-Lib STOCH)",
        ),
        IndicatorDef(
            "stochrsi",
            S.stochrsi_run,
            (_len(14), _int("rsi_length", 14), _int("k", 3), _int("d", 3)),
            _outs("k", "d"),
            lambda p: 13 + n(p) + int(p["k"]) + int(p["d"]),
            lambda p: int(p["rsi_length"]) + n(p) + int(p["k"]) + int(p["d"]) - 3,
            True,
            doc="stochastic of RSI, k and d SMA-smoothed",
        ),
        IndicatorDef(
            "fisher",
            S.fisher_run,
            (_len(9),),
            _outs("fisher", "signal"),
            lambda p: 5 + n(p),
            lambda p: n(p),
            doc="Ehlers Fisher transform of hl2; signal = previous value",
        ),
        IndicatorDef(
            "tsi",
            S.tsi_run,
            (_int("fast", 13), _int("slow", 25), _int("signal", 13)),
            _outs("tsi", "signal"),
            lambda p: 16,
            lambda p: int(p["slow"]) + int(p["fast"]) + int(p["signal"]) - 2,
            True,
            check=_fast_slow,
            doc="true strength index",
        ),
        # trend
        IndicatorDef(
            "adx",
            S.adx_run,
            (_len(14, 2),),
            _outs("adx", "dmp", "dmn", "adxr"),
            lambda p: 12 + n(p),
            lambda p: 3 * n(p) - 2,
            doc="ADX with +DI (dmp), −DI (dmn) and ADXR (TA-Lib)",
        ),
        IndicatorDef(
            "aroon",
            S.aroon_run,
            (_len(14),),
            _outs("up", "down", "osc"),
            lambda p: 4 + 2 * (n(p) + 1),
            lambda p: n(p),
            doc="Aroon up/down over length + 1 bars",
        ),
        IndicatorDef(
            "supertrend",
            S.supertrend_run,
            (_len(10), _flt("multiplier", 3.0, 0.01)),
            (
                OutputSpec("trend"),
                OutputSpec("direction", ValueKind.INT),
                OutputSpec("long"),
                OutputSpec("short"),
            ),
            lambda p: 8,
            lambda p: n(p),
            doc="SuperTrend on hl2 ± multiplier·ATR",
        ),
        IndicatorDef(
            "psar",
            S.psar_run,
            (
                _flt("af0", 0.02, 0.0001, 1.0),
                _flt("af", 0.02, 0.0001, 1.0),
                _flt("max_af", 0.2, 0.0001, 1.0),
            ),
            (
                OutputSpec("long"),
                OutputSpec("short"),
                OutputSpec("af"),
                OutputSpec("reversal", ValueKind.BOOL),
            ),
            lambda p: 7,
            lambda p: 1,
            check=lambda p: None if p["af0"] <= p["max_af"] else "af0 must not exceed max_af",
            doc="parabolic SAR (TA-Lib SAR when af0 = af)",
        ),
        IndicatorDef(
            "vortex",
            S.vortex_run,
            (_len(14),),
            _outs("vip", "vim"),
            lambda p: 9 + 3 * n(p),
            lambda p: n(p),
            doc="vortex indicator",
        ),
        IndicatorDef(
            "dm",
            S.dm_run,
            (_len(14, 2),),
            _outs("dmp", "dmn"),
            lambda p: 6,
            lambda p: n(p) - 1,
            doc="Wilder-smoothed directional movement (TA-Lib PLUS_DM/MINUS_DM)",
        ),
        IndicatorDef(
            "trix",
            S.trix_run,
            (_len(18), _int("signal", 9)),
            _outs("trix", "signal"),
            lambda p: 13,
            lambda p: 3 * (n(p) - 1) + int(p["signal"]),
            True,
            doc="1-bar % change of a triple EMA",
        ),
        IndicatorDef(
            "ppo",
            S.ppo_run,
            (_int("fast", 12), _int("slow", 26), _int("signal", 9)),
            _outs("ppo", "signal", "histogram"),
            lambda p: 9,
            lambda p: int(p["slow"]) + int(p["signal"]) - 2,
            True,
            check=_fast_slow,
            doc="percentage price oscillator (EMA)",
        ),
        # volatility
        IndicatorDef(
            "atr",
            S.atr_run,
            (_len(14),),
            VALUE,
            lambda p: 4,
            lambda p: n(p),
            doc="Wilder average true range (TA-Lib)",
        ),
        IndicatorDef(
            "natr",
            S.natr_run,
            (_len(14),),
            VALUE,
            lambda p: 4,
            lambda p: n(p),
            doc="ATR as % of close",
        ),
        IndicatorDef(
            "bbands",
            S.bbands_run,
            (_len(20, 2), _flt("std", 2.0)),
            _outs("lower", "middle", "upper", "bandwidth", "percent_b"),
            lambda p: 6 + n(p),
            lambda p: n(p) - 1,
            True,
            doc="Bollinger bands (population std)",
        ),
        IndicatorDef(
            "kc",
            S.kc_run,
            (_len(20), _flt("scalar", 2.0)),
            _outs("lower", "basis", "upper"),
            lambda p: 7,
            lambda p: n(p) - 1,
            doc="Keltner channel: EMA ± scalar·EMA(true range)",
        ),
        IndicatorDef(
            "donchian",
            S.donchian_run,
            (_int("lower_length", 20), _int("upper_length", 20)),
            _outs("lower", "middle", "upper"),
            lambda p: 4 + int(p["lower_length"]) + int(p["upper_length"]),
            lambda p: max(int(p["lower_length"]), int(p["upper_length"])) - 1,
            doc="Donchian channel",
        ),
        IndicatorDef(
            "squeeze",
            S.squeeze_run,
            (
                _int("bb_length", 20, 2),
                _flt("bb_std", 2.0),
                _int("kc_length", 20, 2),
                _flt("kc_scalar", 1.5),
            ),
            (
                OutputSpec("sqz"),
                OutputSpec("on", ValueKind.BOOL),
                OutputSpec("off", ValueKind.BOOL),
                OutputSpec("no_sqz", ValueKind.BOOL),
            ),
            lambda p: 13 + int(p["bb_length"]) + 5 * int(p["kc_length"]),
            lambda p: max(int(p["bb_length"]), 2 * int(p["kc_length"]) - 1) - 1,
            doc="TTM squeeze (LazyBear): BB inside/outside KC and momentum",
        ),
        # volume
        IndicatorDef(
            "obv",
            S.obv_run,
            (),
            VALUE,
            lambda p: 2,
            lambda p: 0,
            doc="on-balance volume (TA-Lib: starts at the first volume)",
        ),
        IndicatorDef(
            "cmf",
            S.cmf_run,
            (_len(20),),
            VALUE,
            lambda p: 4 + 2 * n(p),
            lambda p: n(p) - 1,
            doc="Chaikin money flow",
        ),
        IndicatorDef(
            "kvo",
            S.kvo_run,
            (_int("fast", 34), _int("slow", 55), _int("signal", 13)),
            _outs("kvo", "signal"),
            lambda p: 10,
            lambda p: int(p["slow"]) + int(p["signal"]) - 1,
            check=_fast_slow,
            doc="Klinger volume oscillator on signed volume",
        ),
        IndicatorDef(
            "volume_sma",
            S.volume_sma_run,
            (_len(20),),
            VALUE,
            lambda p: 2 + n(p),
            lambda p: n(p) - 1,
            doc="SMA of volume",
        ),
        # momentum
        IndicatorDef(
            "macd",
            S.macd_run,
            (_int("fast", 12), _int("slow", 26), _int("signal", 9)),
            _outs("macd", "signal", "histogram"),
            lambda p: 10,
            lambda p: int(p["slow"]) + int(p["signal"]) - 2,
            True,
            check=_fast_slow,
            doc="MACD (TA-Lib seeding)",
        ),
        IndicatorDef(
            "roc",
            S.roc_run,
            (_len(10),),
            VALUE,
            lambda p: 3 + n(p),
            lambda p: n(p),
            True,
            doc="rate of change, %",
        ),
        IndicatorDef(
            "mom",
            S.mom_run,
            (_len(10),),
            VALUE,
            lambda p: 3 + n(p),
            lambda p: n(p),
            True,
            doc="momentum: x − x[length]",
        ),
        # price
        IndicatorDef(
            "ohlc4",
            S.ohlc4_run,
            (),
            VALUE,
            lambda p: 1,
            lambda p: 0,
            doc="(open + high + low + close) / 4",
        ),
        IndicatorDef(
            "midprice",
            S.midprice_run,
            (_len(14, 2),),
            VALUE,
            lambda p: 4 + 2 * n(p),
            lambda p: n(p) - 1,
            doc="(highest high + lowest low) / 2",
        ),
    ]


DEFS: dict[str, IndicatorDef] = {d.name: d for d in _defs()}

#: State slots that start as NaN ("no previous bar yet"); every other slot starts at 0.
NAN_SLOTS: dict[str, Callable[[Mapping[str, Any]], tuple[int, ...]]] = {
    "rsi": lambda p: (0,),
    "cmo": lambda p: (0,),
    "stochrsi": lambda p: (0,),
    "mfi": lambda p: (0,),
    "uo": lambda p: (0,),
    "adx": lambda p: (0, 1, 2),
    "dm": lambda p: (0, 1),
    "atr": lambda p: (0,),
    "natr": lambda p: (0,),
    "supertrend": lambda p: (0, 4, 5, 6, 7),
    "kama": lambda p: (0,),
    "fisher": lambda p: (0, 1),
    "tsi": lambda p: (0,),
    "vortex": lambda p: (0, 1, 2),
    "trix": lambda p: (9,),
    "kc": lambda p: (6,),
    "squeeze": lambda p: (0,),
    "obv": lambda p: (0,),
    "kvo": lambda p: (0,),
    "vwap": lambda p: (0,),
}


def _ema_conv(n: float) -> int:
    """Bars for an EMA's seed to fade below 1e-6 of its weight: (1 − 2/(n+1))^k < 1e-6."""
    return math.ceil(6.91 * (n + 1)) + 1


def _wilder_conv(n: float) -> int:
    """Bars for a Wilder average's seed to fade below 1e-6: (1 − 1/n)^k < 1e-6."""
    return math.ceil(13.82 * n) + 1


def _i(p: Mapping[str, Any], k: str) -> int:
    return int(p[k])


#: Extra bars after the first valid value until a recursive indicator has forgotten its seed (to
#: ~1e-6). The engine loads `first valid + convergence` bars of history; path-dependent indicators
#: without a fading seed (obv, psar, vwap before its first anchor) are not listed.
CONVERGENCE: dict[str, Callable[[Mapping[str, Any]], int]] = {
    "ema": lambda p: _ema_conv(_i(p, L)),
    "dema": lambda p: 2 * _ema_conv(_i(p, L)),
    "tema": lambda p: 3 * _ema_conv(_i(p, L)),
    "zlma": lambda p: _ema_conv(_i(p, L)),
    "kama": lambda p: 30 * _i(p, L),
    "rsi": lambda p: _wilder_conv(_i(p, L)),
    "cmo": lambda p: _wilder_conv(_i(p, L)),
    "stochrsi": lambda p: _wilder_conv(_i(p, "rsi_length")),
    "fisher": lambda p: 40,
    "tsi": lambda p: (
        _ema_conv(_i(p, "slow")) + _ema_conv(_i(p, "fast")) + _ema_conv(_i(p, "signal"))
    ),
    "adx": lambda p: 2 * _wilder_conv(_i(p, L)),
    "dm": lambda p: _wilder_conv(_i(p, L)),
    "atr": lambda p: _wilder_conv(_i(p, L)),
    "natr": lambda p: _wilder_conv(_i(p, L)),
    "supertrend": lambda p: _wilder_conv(_i(p, L)),
    "trix": lambda p: 3 * _ema_conv(_i(p, L)) + _ema_conv(_i(p, "signal")),
    "ppo": lambda p: _ema_conv(_i(p, "slow")) + _ema_conv(_i(p, "signal")),
    "macd": lambda p: _ema_conv(_i(p, "slow")) + _ema_conv(_i(p, "signal")),
    "kc": lambda p: _ema_conv(_i(p, L)),
    "kvo": lambda p: _ema_conv(_i(p, "slow")) + _ema_conv(_i(p, "signal")),
}
