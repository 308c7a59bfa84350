"""The one rounding both the simulator and the jitted loop use, at the edges of its range."""

from __future__ import annotations

import pytest

from trade.instruments import InstrumentSpec, round_price, round_qty_down


def test_rounding_on_ordinary_values() -> None:
    assert round_qty_down(0.0123456, 0.001) == 0.012
    assert round_qty_down(0.3, 0.1) == 0.3  # float noise below a step is not a step less
    assert round_price(101.2345, 0.1) == 101.2
    assert round_price(101.25, 0.1) == 101.3


@pytest.mark.parametrize(("qty", "step"), [(2e25, 0.001), (1e22, 1e-12), (9.3e15, 0.001)])
def test_a_quantity_past_int64_steps_stays_itself(qty: float, step: float) -> None:
    """A huge equity on a micro-priced symbol once wrapped to a negative quantity (and was then
    refused as `qty_step`), in compiled code only, so the two loops could disagree."""
    assert round_qty_down(qty, step) == pytest.approx(qty, rel=1e-12)
    spec = InstrumentSpec("X", tick_size=1e-8, qty_step=step, min_qty=step, min_notional=0)
    assert spec.round_qty_down(qty) == round_qty_down(qty, step)


def test_a_price_past_int64_ticks_stays_itself() -> None:
    assert round_price(1e12, 1e-8) == pytest.approx(1e12, rel=1e-12)
