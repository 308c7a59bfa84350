"""The Play model: every key of the DSL with its type, bounds and documented default.

Models are frozen and forbid unknown keys. Conditions are kept as raw YAML values here and compiled
by `compile.py` once the feature catalog is known, so this file is the single list of keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import InputError
from ..timeframes import TIMEFRAMES, canonical

ROLES = ("low_tf", "med_tf", "high_tf")
INTENTS = ("entry_long", "entry_short", "exit_long", "exit_short", "exit_all")
SOURCES = ("close", "open", "high", "low", "volume", "hl2", "hlc3", "ohlc4")


MAX_BARS = 100_000  # any count of bars a Play names: warmup, windows, offsets, order lifetimes
MAX_EQUITY = 1e12


class _Model(BaseModel):
    # every number finite: `.inf` and 1e400 are refused here, not found in result.json
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Timeframes(_Model):
    """Three timeframe roles and the exec pointer. med/high default to the role below them."""

    low_tf: str
    med_tf: str | None = None
    high_tf: str | None = None
    exec: Literal["low_tf", "med_tf", "high_tf"] = "low_tf"

    @field_validator("low_tf", "med_tf", "high_tf")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return canonical(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _order(self) -> Timeframes:
        med = self.med_tf or self.low_tf
        high = self.high_tf or med
        object.__setattr__(self, "med_tf", med)
        object.__setattr__(self, "high_tf", high)
        if not TIMEFRAMES[self.low_tf] <= TIMEFRAMES[med] <= TIMEFRAMES[high]:
            raise ValueError(
                f"timeframes must satisfy low_tf <= med_tf <= high_tf in duration, got {self.low_tf}, {med}, {high}"
            )
        return self

    def resolve(self, tf: str) -> str:
        """Concrete timeframe of a role name (or of a concrete name)."""
        if tf == "exec":
            tf = self.exec
        if tf in ROLES:
            return str(getattr(self, tf))
        return canonical(tf)

    @property
    def exec_tf(self) -> str:
        return self.resolve(self.exec)


class Fees(_Model):
    taker: float = Field(5.5, ge=0, le=100, description="taker fee in bps of notional")
    maker: float = Field(2.0, ge=-100, le=100, description="maker fee in bps (negative = rebate)")


class Account(_Model):
    starting_equity: float = Field(gt=0, le=MAX_EQUITY)
    leverage: float = Field(1.0, ge=1, le=200)
    margin_mode: Literal["isolated"] = "isolated"
    fee_bps: Fees = Fees()
    slippage_bps: float = Field(2.0, ge=0, le=1000)
    mmr: float | None = Field(
        None, gt=0, lt=1, description="maintenance margin rate; None = instrument's"
    )
    min_notional: float | None = Field(None, ge=0, description="None = instrument's")
    max_drawdown_pct: float | None = Field(None, gt=0, le=100)
    liquidation_fee_bps: float | None = Field(None, ge=0, description="None = the taker fee")


class FeatureDecl(_Model):
    indicator: str
    params: dict[str, Any] = {}
    tf: str = "exec"
    source: Literal["close", "open", "high", "low", "volume", "hl2", "hlc3", "ohlc4"] | None = None


class StructureDecl(_Model):
    type: str
    key: str = Field(pattern=r"^[A-Za-z_]\w*$")
    params: dict[str, Any] = {}
    uses: str | list[str] | dict[str, str] | None = None


class Intent(_Model):
    action: Literal["entry_long", "entry_short", "exit_long", "exit_short", "exit_all"]
    percent: float = Field(100.0, gt=0, le=100, description="share of the position an exit closes")
    metadata: dict[str, Any] = {}


class Case(_Model):
    when: Any
    emit: list[Intent]

    @field_validator("emit", mode="before")
    @classmethod
    def _emit(cls, v: Any) -> Any:
        return _intents(v)


class ElseCase(_Model):
    emit: list[Intent]

    @field_validator("emit", mode="before")
    @classmethod
    def _emit(cls, v: Any) -> Any:
        return _intents(v)


class ActionBlock(_Model):
    id: str
    cases: list[Case] = Field(min_length=1)
    else_: ElseCase | None = Field(None, alias="else")

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )


def _intents(v: Any) -> Any:
    """`emit: entry_long`, `emit: [entry_long]` and `emit: [{action: exit_long, percent: 50}]`."""
    items = v if isinstance(v, list) else [v]
    return [{"action": i} if isinstance(i, str) else i for i in items]


class PositionPolicy(_Model):
    mode: Literal["long_only", "short_only", "long_short"] = "long_short"
    exit_mode: Literal["first_hit", "signal", "tp_sl"] = "first_hit"
    allow_flip: bool = False


class Distance(_Model):
    """A price distance: percent of the fill price, ATR multiple, fixed price units, or R multiple."""

    type: Literal["percent", "atr_multiple", "fixed", "rr_ratio"]
    value: float = Field(gt=0)
    atr: str | None = Field(None, description="feature key of the ATR for atr_multiple")

    @model_validator(mode="after")
    def _atr(self) -> Distance:
        if self.type == "atr_multiple" and not self.atr:
            raise ValueError("atr_multiple needs 'atr': the key of an atr feature")
        if self.type != "atr_multiple" and self.atr:
            raise ValueError(f"'atr' only applies to atr_multiple, not {self.type}")
        return self


class Trailing(_Model):
    type: Literal["percent", "atr_multiple", "fixed"]
    value: float = Field(gt=0)
    atr: str | None = None
    activation_pct: float = Field(
        0.0, ge=0, description="profit in % of entry before trailing starts"
    )


class BreakEven(_Model):
    trigger: Distance
    offset_pct: float = Field(0.0, ge=0, description="stop moves to entry ± this % (covers fees)")


class Sizing(_Model):
    model: Literal["percent_equity", "risk_based", "fixed_notional"] = "percent_equity"
    value: float = Field(100.0, gt=0)
    max_position_equity_pct: float = Field(100.0, gt=0)


class Guards(_Model):
    """Limits between decisions and the orders in every mode, backtests included
    (docs/operations.md); the account's `~/.trade/config.toml` `[guards]` caps them live (and in a
    backtest with `--account-guards`) and a Play may only tighten those."""

    max_daily_loss_usdt: float | None = Field(None, gt=0)
    max_daily_loss_pct: float | None = Field(None, gt=0, le=100)
    max_drawdown_pct: float | None = Field(None, gt=0, le=100)
    max_position_notional: float | None = Field(None, gt=0)
    max_leverage: float | None = Field(None, gt=0)
    min_balance: float | None = Field(None, ge=0)
    max_price_deviation_pct: float | None = Field(None, gt=0)
    max_orders_per_minute: int | None = Field(None, ge=1)
    require_stop: bool | None = None


class Risk(_Model):
    stop_loss: Distance | None = None
    take_profit: Distance | None = None
    trailing: Trailing | None = None
    break_even: BreakEven | None = None
    sizing: Sizing = Sizing()
    guards: Guards = Guards()
    stop_beyond_liquidation: Literal["reject", "tighten"] = Field(
        "reject",
        description="an entry whose stop lies at or beyond its liquidation price: reject it, or "
        "tighten the stop to one tick inside the liquidation price",
    )

    @model_validator(mode="after")
    def _rules(self) -> Risk:
        if self.stop_loss is not None and self.stop_loss.type == "rr_ratio":
            raise ValueError(
                "stop_loss cannot be rr_ratio (rr_ratio is a multiple of the stop distance)"
            )
        if (
            self.take_profit is not None
            and self.take_profit.type == "rr_ratio"
            and self.stop_loss is None
        ):
            raise ValueError("take_profit rr_ratio needs a stop_loss")
        if self.sizing.model == "risk_based" and self.stop_loss is None:
            raise ValueError("sizing model risk_based needs a stop_loss")
        if (
            self.break_even is not None
            and self.break_even.trigger.type == "rr_ratio"
            and self.stop_loss is None
        ):
            raise ValueError("break_even trigger rr_ratio needs a stop_loss")
        return self


class Entry(_Model):
    order_type: Literal["market", "limit"] = "market"
    limit_offset_pct: float = Field(0.0, ge=0, lt=100)
    expire_after_bars: int = Field(1, ge=1, le=MAX_BARS)


class Expected(_Model):
    """Outcome a validation Play asserts about its own backtest."""

    trades_min: int = Field(1, ge=0)
    trades_max: int | None = Field(None, ge=0)
    exit_reasons: list[
        Literal[
            "signal",
            "take_profit",
            "stop_loss",
            "trailing_stop",
            "liquidation",
            "max_drawdown",
            "end_of_data",
        ]
    ] = []
    funding_paid: bool = False
    data: dict[str, Any] = {}


Scalar = bool | int | float | str


class SweepParam(_Model):
    """Values one variable takes in a sweep: `choices`, or `low`..`high` (inclusive) by `step`
    (default 1), or with `log: true` `count` values spaced evenly in log scale."""

    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = Field(None, gt=0)
    log: bool = False
    count: int | None = Field(None, ge=2, le=10_000)
    choices: list[Scalar] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> SweepParam:
        ranged = self.low is not None or self.high is not None
        if self.choices is not None:
            if ranged or self.step is not None or self.log or self.count is not None:
                raise ValueError("give either choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("expected choices: [...] or low and high")
        if self.low > self.high:
            raise ValueError(f"empty range: low {self.low} is above high {self.high}")
        if self.log:
            if self.step is not None:
                raise ValueError("a log range takes count, not step")
            if self.count is None:
                raise ValueError("a log range needs count (how many values)")
            if self.low <= 0:
                raise ValueError(f"a log range needs low > 0, got {self.low}")
        elif self.count is not None:
            raise ValueError("count applies to a log range (log: true); use step")
        return self


class Sweep(_Model):
    """The search space of `trade sweep` and `trade walkforward` over the Play's variables."""

    params: dict[str, SweepParam] = Field(min_length=1)
    constraints: list[str] = []  # `fast < slow`: variable or number, operator, variable or number
    objective: str = "sharpe"  # a metric of result.json (see trade.report.metrics.OBJECTIVES)


class Play(_Model):
    version: Literal["1"] = "1"
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    symbol: str = Field(pattern=r"^[A-Z0-9]+$")
    timeframes: Timeframes
    account: Account
    features: dict[str, FeatureDecl] = {}
    structures: dict[Literal["exec", "low_tf", "med_tf", "high_tf"], list[StructureDecl]] = {}
    setups: dict[str, Any] = {}
    actions: (
        dict[Literal["entry_long", "entry_short", "exit_long", "exit_short", "exit_all"], Any]
        | list[ActionBlock]
    )
    position_policy: PositionPolicy = PositionPolicy()
    risk: Risk = Risk()
    entry: Entry = Entry()
    variables: dict[str, Any] = {}
    warmup_bars: int = Field(0, ge=0, le=MAX_BARS)
    evaluation: Literal["exec_close", "every_1m"] = "exec_close"
    expected: Expected | None = None
    sweep: Sweep | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("features", "setups")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        import re

        for key in v:
            if not re.fullmatch(r"[A-Za-z_]\w*", key):
                raise ValueError(f"name {key!r} must be an identifier (letters, digits, _)")
        return v

    def blocks(self) -> list[ActionBlock]:
        """Actions in block form; the dict shorthand `entry_long: cond` is one block per intent."""
        if isinstance(self.actions, list):
            return list(self.actions)
        return [
            ActionBlock(id=name, cases=[Case(when=cond, emit=[Intent(action=name)])])
            for name, cond in self.actions.items()
        ]
