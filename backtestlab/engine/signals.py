"""What a strategy hands the engine: signal arrays and levels, and the parameters it reads.

A strategy's ``signals(ctx, p)`` returns :class:`Signals` for one set of signal parameters;
its optional ``levels(p)`` returns :class:`Levels` from the exit and sizing parameters.  The
engine (:mod:`backtestlab.engine.runner`) turns both into the one simulator's inputs.

Conventions (``n`` bars; every array is read at the close of its bar, orders fill at the next
open, see :mod:`backtestlab.engine.simulate`):

==============  ==================================================================================
entries         bool (enter on ``side``) or integers (+1 long, -1 short, 0 nothing), shape (n,)
exits           bool, shape (n,): leave the open position at the next open
side            1 or -1: the side of boolean ``entries``
limit           limit price per entry bar (NaN = market order); a limit entry never reverses
stop_pct        stop distance from the entry fill in percent: a number or one per bar
target_pct      target distance likewise
stop_price      absolute stop per entry bar (NaN = none); instead of ``stop_pct``
target_price    absolute target per entry bar, or a list of K arrays: K equal sub-positions
                (partial exits, e.g. TP1/TP2/TP3), each with its own target and the same stop
parts           with a list of targets in a batch: how many of them each row uses
size            fraction of equity committed per entry, in (0, 1]: a number or one per bar
flow            cash per unit of position credited at each bar's close (funding, settlement)
==============  ==================================================================================

In a batch (``signals_batch``) every per-bar array has a leading axis of G rows (one per set
of signal parameters); a 1-D array is shared by all rows.  A batch's partial-exit targets may
also be one (G, K, n) array.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numba import njit


@dataclass
class Signals:
    entries: Any
    exits: Any = None
    side: int = 1
    limit: Any = None
    stop_pct: Any = None
    target_pct: Any = None
    stop_price: Any = None
    target_price: Any = None
    parts: Any = None
    size: Any = None
    flow: Any = None


@dataclass
class Levels:
    """Stops, targets and size from the exit and sizing parameters (percent; numbers, or
    arrays with one value per combination when the engine passes columns)."""

    stop_pct: Any = None
    target_pct: Any = None
    size: Any = None


LEVEL_FIELDS = tuple(f.name for f in fields(Levels))


class Params(Mapping):
    """Parameter values by attribute (``p.fast``) or key (``p["fast"]``).

    For ``signals`` each value is one number, bool or choice; for ``levels`` in a sweep each
    value is a float64 array with one entry per combination (numpy arithmetic reads the same).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no parameter {name!r} here; known: {', '.join(self._values)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("parameters are read-only")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values!r})"


def per_bar(value: Any, n: int, what: str, dtype=np.float64, rows: int | None = None) -> np.ndarray:
    """``value`` as a C-contiguous (n,) array, or (rows, n) in a batch; a scalar or a
    shared (n,) array is broadcast.  Raises ValueError naming ``what`` on a bad shape."""
    arr = np.asarray(value)
    shape = (n,) if rows is None else (rows, n)
    if arr.ndim == 0 or (rows is not None and arr.shape == (n,)):
        arr = np.broadcast_to(arr, shape)
    if arr.shape != shape:
        want = f"({n},)" if rows is None else f"({rows}, {n}) or ({n},)"
        raise ValueError(f"{what} must have shape {want} (one value per bar), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _like(b, a: np.ndarray) -> np.ndarray:
    """``b`` as a float64 array shaped like ``a`` (a number becomes a constant series)."""
    if np.ndim(b) == 0:
        return np.full(a.shape, float(b))
    b = np.ascontiguousarray(b, dtype=np.float64)
    if b.shape != a.shape:
        raise ValueError(f"the two series must have the same shape, got {a.shape} and {b.shape}")
    return b


@njit(cache=True, error_model="numpy")
def _crossed_above_kernel(a, b, out):
    out[0] = False
    for i in range(1, a.shape[0]):
        out[i] = a[i] > b[i] and a[i - 1] <= b[i - 1]


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True on bar i when ``a[i] > b[i]`` and ``a[i-1] <= b[i-1]`` (all four defined: a NaN
    warm-up never crosses).  ``b`` may be a number (a level)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    b = _like(b, a)
    out = np.empty(a.shape, dtype=np.bool_)
    if a.ndim != 1:
        raise ValueError(f"crossed_above needs 1-D series, got shape {a.shape}")
    if a.shape[0]:
        _crossed_above_kernel(a, b, out)
    return out


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True on bar i when ``a[i] < b[i]`` and ``a[i-1] >= b[i-1]`` (all four defined).
    ``b`` may be a number."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    return crossed_above(_like(b, a), a)
