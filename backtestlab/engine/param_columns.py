"""Parameter lists as float64 columns for compiled ``run_many`` loops.

A sweep's parameter sets come from a validated grid, so re-validating every dict in Python
would cost more than the backtest itself.  :func:`param_columns` checks all values at once
(types, bounds, whole numbers, choices) and only on a failure falls back to the exact
per-value messages of :meth:`ParameterSpace.validate_params`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parameters import ParameterError, ParameterSpace


def param_columns(space: ParameterSpace, param_list: Sequence[dict]) -> dict[str, np.ndarray]:
    """``{name: float64 array}`` over ``param_list`` (defaults fill missing names).

    A ``choice`` parameter becomes the index of its value in ``choices`` (0, 1, ...); a
    ``bool`` one 0 or 1.
    Raises :class:`ParameterError` naming the first bad value.
    """
    defaults = space.defaults()
    ok = set().union(*param_list) <= defaults.keys()
    out: dict[str, np.ndarray] = {}
    if ok:
        for prm in space.params:
            col = [p.get(prm.name, defaults[prm.name]) for p in param_list]
            if prm.kind == "bool":
                if not set(map(type, col)) <= {bool, np.bool_}:
                    ok = False
                    break
                arr = np.array(col, dtype=np.float64)
            elif prm.kind == "choice":
                codes = {c: i for i, c in enumerate(prm.choices)}
                try:
                    arr = np.array([codes[v] for v in col], dtype=np.float64)
                except (KeyError, TypeError):
                    ok = False
                    break
            else:
                if {bool, np.bool_} & set(map(type, col)):
                    ok = False
                    break
                try:
                    arr = np.array(col, dtype=np.float64)
                except (TypeError, ValueError, OverflowError):
                    ok = False
                    break
                bad = ~np.isfinite(arr)
                if prm.low is not None:
                    bad |= arr < prm.low
                if prm.high is not None:
                    bad |= arr > prm.high
                if prm.kind == "int":
                    bad |= arr != np.floor(arr)
                if bad.any():
                    ok = False
                    break
            out[prm.name] = arr
    if not ok:
        for p in param_list:
            space.validate_params(p)
        raise ParameterError("parameter_grid", "invalid parameter values")
    return out
