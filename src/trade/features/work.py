"""The part every incremental feature driver shares: one float64 work array holding the bar,
outputs, params and state, so an update is a single call into numba and a view of the outputs
stays valid for as long as the driver lives."""

from __future__ import annotations

import numpy as np


class WorkArrayDriver:
    """Layout: `_w[_o0:_p0]` outputs, `_w[_p0:_st0]` encoded params, `_w[_st0:]` state; subclasses
    set these and `_label` (the indicator name or detector type, for errors) in their
    constructors."""

    _w: np.ndarray
    _o0: int
    _p0: int
    _st0: int
    _label: str
    _kind = "feature"

    def values(self) -> tuple[float, ...]:
        """The current outputs, in declared order."""
        return tuple(self.outputs.tolist())

    @property
    def outputs(self) -> np.ndarray:
        """The current outputs as a view the run writes in place."""
        return self._w[self._o0 : self._p0]

    @property
    def state(self) -> np.ndarray:
        """The state array (a view: the run updates it in place)."""
        return self._w[self._st0 :]

    def assign(self, other: WorkArrayDriver) -> None:
        """Take `other`'s state and outputs in place (views and kernels handed out stay valid)."""
        if (
            type(other) is not type(self)
            or other._label != self._label
            or len(other._w) != len(self._w)
            or not np.array_equal(other._w[self._p0 : self._st0], self._w[self._p0 : self._st0])
        ):
            raise ValueError(f"{other._label}: state is for another {self._kind} or params")
        self._w[:] = other._w
