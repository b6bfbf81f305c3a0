"""Parameter-grid enumeration and hashing.

A grid is an ordered mapping ``name -> list of values`` (as returned by
:meth:`ParameterSpace.validate_grid`).  Combination ``index`` is decoded in mixed radix with
the LAST key varying fastest, which matches ``itertools.product`` order; the mapping from
index to parameters is therefore stable and can be used to shard work.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .parameters import Constraint


def grid_size(grid: Mapping[str, Sequence]) -> int:
    """Number of combinations (exact Python int, product of list lengths)."""
    return math.prod(len(v) for v in grid.values())


def _check_index(grid: Mapping[str, Sequence], index: int) -> int:
    size = grid_size(grid)
    if not 0 <= index < size:
        raise IndexError(f"combination index {index} out of range 0..{size - 1}")
    return size


def params_at(grid: Mapping[str, Sequence], index: int) -> dict[str, Any]:
    """Parameters of combination ``index`` (0-based, last key fastest)."""
    index = int(index)
    _check_index(grid, index)
    keys = list(grid)
    out: dict[str, Any] = {}
    for k in reversed(keys):
        values = grid[k]
        index, r = divmod(index, len(values))
        out[k] = values[r]
    return {k: out[k] for k in keys}


def params_range(grid: Mapping[str, Sequence], start: int, stop: int) -> list[dict[str, Any]]:
    """``[params_at(grid, i) for i in range(start, stop)]`` using an odometer (O(1) per
    combination instead of a full decode).  ``stop`` is clamped to the grid size."""
    start = max(int(start), 0)
    stop = min(int(stop), grid_size(grid))
    keys = list(grid)
    values = [grid[k] for k in keys]
    radix = [len(v) for v in values]
    digits = []  # of ``start``, most significant first
    rem = start
    for r in reversed(radix):
        rem, digit = divmod(rem, r)
        digits.insert(0, digit)
    out = []
    for _ in range(start, stop):
        out.append({k: values[j][digits[j]] for j, k in enumerate(keys)})
        for j in reversed(range(len(keys))):  # advance the odometer, last key fastest
            digits[j] += 1
            if digits[j] < radix[j]:  # pragma: no mutate: Lt_NotEq (steps of one from below)
                break
            digits[j] = 0
    return out


def index_range(grid: Mapping[str, Sequence], start: int, stop: int | None) -> range:
    """Combination indexes ``start`` .. ``stop - 1`` within the grid (``stop`` None: to its
    end; both clamped to ``0`` .. grid size)."""
    size = grid_size(grid)
    stop = size if stop is None else min(int(stop), size)
    return range(max(int(start), 0), max(stop, 0))


def grid_positions(
    grid: Mapping[str, Sequence], start: int, stop: int | None
) -> dict[str, np.ndarray]:
    """Each parameter's value position (index into its list) for the combinations of
    :func:`index_range`, decoded at once as arrays (the order of :func:`params_range`)."""
    indexes = index_range(grid, start, stop)
    rest = np.arange(indexes.start, indexes.stop, dtype=np.int64)  # empty if stop <= start
    out: dict[str, np.ndarray] = {}
    for k in reversed(list(grid)):
        rest, out[k] = np.divmod(rest, len(grid[k]))
    return {k: out[k] for k in grid}


def rule_label(rule: Any) -> str:
    """A constraint in words: a rule's text, else the first line of the callable's docstring,
    else its name."""
    if isinstance(rule, Constraint):
        return rule.rule
    doc = (getattr(rule, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else getattr(rule, "__name__", repr(rule))


def constraint_masks(
    grid: Mapping[str, Sequence],
    constraints: Sequence[Any],
    start: int = 0,  # pragma: no mutate: NumberReplacer (index_range clamps below 0 to 0)
    stop: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """For each constraint, its label and where it holds over the combinations of
    :func:`index_range` (all of the grid by default).

    A rule (:class:`~backtestlab.engine.parameters.Constraint`) is evaluated on whole value
    arrays at once; a callable ``params -> reason | None`` is asked once per combination
    with the combination's values (as the grid holds them).
    """
    n = len(index_range(grid, start, stop))
    positions = grid_positions(grid, start, stop)
    columns = {k: np.asarray(grid[k])[positions[k]] for k in grid}
    out = []
    for rule in constraints:
        if isinstance(rule, Constraint):
            holds = np.broadcast_to(np.asarray(rule.holds(columns), dtype=bool), (n,)).copy()
        else:
            holds = np.fromiter(
                (not rule({k: grid[k][positions[k][j]] for k in grid}) for j in range(n)),
                dtype=bool,
                count=n,
            )
        out.append((rule_label(rule), holds))
    return out


def allowed(
    grid: Mapping[str, Sequence],
    constraints: Sequence[Any],
    start: int = 0,  # pragma: no mutate: NumberReplacer (index_range clamps below 0 to 0)
    stop: int | None = None,
) -> np.ndarray:
    """True for the combinations of :func:`index_range` that keep every constraint: the
    ones a sweep runs (the others are skipped, never backtested)."""
    mask = np.ones(len(index_range(grid, start, stop)), dtype=bool)
    for _, holds in constraint_masks(grid, constraints, start, stop):
        mask &= holds
    return mask


def _canonical(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        f = float(v)
        if not math.isfinite(f):
            raise ValueError(f"cannot hash non-finite value {v!r}")
        return f
    if isinstance(v, str):
        return v
    raise TypeError(f"cannot hash parameter value of type {type(v).__name__}")


def param_hash(params: Mapping[str, Any]) -> str:
    """40-hex SHA-1 of canonical JSON: sorted keys, compact separators, ints as ints, floats
    via ``repr`` (round-trip exact), bools as JSON booleans.  Hash VALIDATED params: the
    int parameter 5 and the float 5.0 are different values until coercion unifies them."""
    canon = {str(k): _canonical(v) for k, v in params.items()}
    text = json.dumps(
        canon,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,  # pragma: no mutate (a second guard: _canonical refuses NaN and inf)
    )
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def run_params(strategy, ctx, param_list: Sequence[dict], costs) -> np.ndarray:
    """Metrics matrix for ``param_list`` (delegates to ``strategy.run_many``)."""
    if costs.signal_delay_bars:
        raise ValueError("signal_delay_bars is a stress scenario of single runs (Strategy.run)")
    return strategy.run_many(ctx, param_list, costs)
