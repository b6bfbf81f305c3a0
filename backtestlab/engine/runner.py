"""The engine's half of the strategy contract: one detailed run, and the compiled sweep.

A strategy gives signals (:class:`~backtestlab.engine.signals.Signals`) and, optionally,
levels from its exit and sizing parameters; everything else is here and in the one
simulator, cost model and metrics kernel:

* :func:`run` - one backtest with trades and equity (:class:`BacktestResult`);
* :func:`run_many` - the metrics matrix of many parameter sets, ``compute(run(...))`` row by
  row, exactly.  Combinations are grouped by their signal parameters, so a 900-combination
  ``sma_cross`` sweep (100 window pairs x 9 stop/target settings) computes 100 signal sets;
  each group's combinations then run through one compiled loop (simulator + metrics).

Signals of many groups are computed in batches (``strategy.signals_batch`` when the strategy
has a compiled one, else one ``signals`` call per group) of at most ``BATCH_CELLS`` bar values,
so memory stays bounded on long data.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit, types
from numba.extending import overload

from .backtest_result import BacktestResult
from .metrics import N_METRICS, curve_and_trade_metrics, metrics_kernel
from .param_columns import param_columns
from .signals import LEVEL_FIELDS, Levels, Params, Signals, per_bar
from .simulate import (
    LEVEL_FRACTION,
    LEVEL_PRICE,
    allocate_trade_buffers,
    cost_fractions,
    parts_work,
    result_from_buffers,
    simulate_kernel,
    simulate_parts,
)
from .timeframes import bars_per_year

# Bar values per signal array in one batch: entries, exits and up to six float64 level arrays
# make ~50 bytes a cell, so a batch stays under ~50 MB whatever the data's length.
BATCH_CELLS = 1_048_576


def _pick(rows, i):  # pragma: no cover - replaced by the overload inside compiled code
    return None if rows is None else rows[i]


@overload(_pick, inline="always")
def _pick_impl(rows, i):
    if isinstance(rows, types.NoneType):
        return lambda rows, i: None
    return lambda rows, i: rows[i]


@njit(cache=True, error_model="numpy")
def sweep_kernel(
    ts, open_, high, low, close, entries, exits, group_row,
    stop_rows, stop_idx, stop_mode, target_rows, target_idx, parts, target_mode,
    limit_rows, limit_idx, flow_rows, flow_idx, size_rows, size_idx,
    hedged, comm, slip, initial_equity, bpy, combos, out,
):  # fmt: skip
    """Backtest + metrics for each combination ``combos[j]`` (a row of ``out``).

    Combination ``k`` reads entry/exit row ``group_row[k]`` and the level rows named by the
    ``*_idx`` arrays (a row has one value, or one per bar); ``None`` rows mean "not given".
    """
    n = open_.shape[0]
    equity = np.empty(n)
    in_pos = np.empty(n, dtype=np.bool_)
    written = np.zeros(1, dtype=np.int64)
    e_idx, x_idx, e_px, x_px, t_side, pnl, reason = allocate_trade_buffers(n)
    work = parts_work(target_rows.shape[1], n)
    for j in range(combos.shape[0]):
        k = combos[j]
        g = group_row[k]
        ti = target_idx[k]
        if parts[ti] == 1:
            # One account: the simulator leaves flat bars out of the curve (same metrics).
            count = simulate_kernel(
                open_, high, low, close, entries[g], exits[g], stop_rows[stop_idx[k]],
                stop_mode, target_rows[ti][0], target_mode, comm, slip, initial_equity,
                equity, in_pos, e_idx, x_idx, e_px, x_px, t_side, pnl, reason,
                _pick(limit_rows, limit_idx[k] if limit_idx.shape[0] > 0 else 0),
                _pick(flow_rows, flow_idx[k] if flow_idx.shape[0] > 0 else 0),
                hedged, 0,
                _pick(size_rows, size_idx[k] if size_idx.shape[0] > 0 else 0),
                written,
            )  # fmt: skip
            curve_and_trade_metrics(
                ts, equity, in_pos, written[0], n, e_idx, x_idx, pnl, count, bpy,
                initial_equity, out[k],
            )  # fmt: skip
            continue
        count = simulate_parts(
            open_, high, low, close, entries[g], exits[g], stop_rows[stop_idx[k]], stop_mode,
            target_rows[ti], parts[ti], target_mode, comm, slip, initial_equity, equity, in_pos,
            e_idx, x_idx, e_px, x_px, t_side, pnl, reason, work,
            _pick(limit_rows, limit_idx[k] if limit_idx.shape[0] > 0 else 0),
            _pick(flow_rows, flow_idx[k] if flow_idx.shape[0] > 0 else 0),
            hedged, 0,
            _pick(size_rows, size_idx[k] if size_idx.shape[0] > 0 else 0),
        )  # fmt: skip
        metrics_kernel(ts, equity, in_pos, e_idx, x_idx, pnl, count, bpy, initial_equity, out[k])


# --------------------------------------------------------------------------- strategy calls


@functools.lru_cache(maxsize=256)
def _function_takes_costs(fn) -> bool:
    try:
        return "costs" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _takes_costs(method) -> bool:
    """Whether a strategy's ``signals``/``signals_batch`` asks for the costs (by name)."""
    return _function_takes_costs(getattr(method, "__func__", method))


def _signal_params(space, values: dict) -> Params:
    return Params({n: values[n] for n in space.names_with_role("signal")})


def _call_signals(strategy, ctx, p: Params, costs) -> Signals:
    fn = strategy.signals
    sig = fn(ctx, p, costs=costs) if _takes_costs(fn) else fn(ctx, p)
    if not isinstance(sig, Signals):
        raise TypeError(
            f"{strategy.key}.signals must return Signals(entries=..., exits=...), "
            f"got {type(sig).__name__}"
        )
    return sig


def _call_batch(strategy, ctx, space, cols, names, picks: np.ndarray, costs, n: int) -> Signals:
    """Signals of the signal-parameter sets of combinations ``picks`` as (G, n) arrays:
    one ``signals_batch`` call with columns when the strategy has one, else one ``signals``
    call per set."""
    batch = getattr(strategy, "signals_batch", None)
    if batch is not None:
        p = Params({name: _column(space[name], cols[name][picks]) for name in names})
        sig = batch(ctx, p, costs=costs) if _takes_costs(batch) else batch(ctx, p)
        if not isinstance(sig, Signals):
            raise TypeError(
                f"{strategy.key}.signals_batch must return Signals with (G, n) arrays, "
                f"got {type(sig).__name__}"
            )
        return sig
    rows = [Params(_decode(space, cols, names, int(k))) for k in picks]
    return _stack([_call_signals(strategy, ctx, p, costs) for p in rows], n)


def _column(prm, values: np.ndarray) -> np.ndarray:
    """A float64 parameter column as its parameter's type (choices as their values)."""
    if prm.kind == "choice":
        return np.array(prm.choices, dtype=object)[values.astype(np.int64)]
    if prm.kind == "int":
        return values.astype(np.int64)
    if prm.kind == "bool":
        return values.astype(np.bool_)
    return values


def _entries(sig: Signals, n: int, rows: int | None) -> np.ndarray:
    entries = np.asarray(sig.entries)
    if entries.dtype == np.bool_:
        if sig.side not in (1, -1):
            raise ValueError(f"side must be 1 (long) or -1 (short), got {sig.side!r}")
        entries = entries.astype(np.int8) * np.int8(sig.side)
    elif entries.dtype.kind not in "iu":
        raise ValueError(
            f"entries must be bool or integers (+1 long, -1 short, 0 none), got {entries.dtype}"
        )
    elif entries.size and (entries.min() < -1 or entries.max() > 1):
        raise ValueError("integer entries must be +1 (long), -1 (short) or 0 (nothing)")
    return per_bar(entries, n, "entries", np.int8, rows)


# What "not given" means for one parameter set when others of its batch give a value.
_NEUTRAL = {
    "exits": False,
    "limit": np.nan,
    "stop_pct": np.nan,
    "target_pct": np.nan,
    "stop_price": np.nan,
    "size": 1.0,
    "flow": 0.0,
}


def _stack(sigs: list[Signals], n: int) -> Signals:
    """One batch Signals from per-group Signals (entries already carry their side)."""
    out: dict[str, Any] = {"entries": np.stack([_entries(s, n, None) for s in sigs]), "side": 1}
    for name in ("exits", "limit", "stop_pct", "target_pct", "stop_price", "size", "flow"):
        values = [getattr(s, name) for s in sigs]
        given = [v is not None for v in values]
        if not any(given):
            continue
        if not all(given):  # the neutral value where a parameter set gives none
            values = [_NEUTRAL[name] if v is None else v for v in values]
        if all(np.ndim(v) == 0 for v in values):
            out[name] = np.array(values, dtype=np.float64).reshape(-1, 1)
        else:
            dtype = np.bool_ if name == "exits" else np.float64
            out[name] = np.stack([per_bar(v, n, name, dtype) for v in values])
    targets = [s.target_price for s in sigs]
    if any(t is not None for t in targets):
        targets = [np.nan if t is None else t for t in targets]
        lists = [list(t) if isinstance(t, (list, tuple)) else [t] for t in targets]
        k_max = max(len(t) for t in lists)
        arr = np.full((len(sigs), k_max, n), np.nan)
        for g, levels in enumerate(lists):
            for k, level in enumerate(levels):
                arr[g, k] = per_bar(level, n, "target_price")
        out["target_price"] = [arr[:, k] for k in range(k_max)]
        out["parts"] = np.array(
            [len(t) if s.parts is None else int(s.parts) for t, s in zip(lists, sigs, strict=True)],
            dtype=np.int64,
        )
    return Signals(**out)


# --------------------------------------------------------------------------- normalising


class _Inputs:
    """The kernel's arrays for G signal rows and M combinations."""

    def __init__(self, sig: Signals, levels: Levels, n: int, g: int, m: int, group_row):
        self.entries = _entries(sig, n, g)
        self.exits = (
            np.zeros((g, n), dtype=np.bool_)
            if sig.exits is None
            else per_bar(sig.exits, n, "exits", np.bool_, g)
        )
        self.limit_rows, self.limit_idx = self._bars(sig.limit, "limit", n, g, group_row)
        self.flow_rows, self.flow_idx = self._bars(sig.flow, "flow", n, g, group_row)
        for name in LEVEL_FIELDS:
            if getattr(sig, name) is not None and getattr(levels, name) is not None:
                raise ValueError(f"{name} is given by both signals and levels; give it once")
        if sig.stop_pct is not None and sig.stop_price is not None:
            raise ValueError("give stop_pct or stop_price, not both")
        if sig.target_pct is not None and sig.target_price is not None:
            raise ValueError("give target_pct or target_price, not both")
        if levels.target_pct is not None and sig.target_price is not None:
            raise ValueError("give target_pct (levels) or target_price (signals), not both")

        self.stop_mode = LEVEL_FRACTION
        if sig.stop_price is not None:
            self.stop_mode = LEVEL_PRICE
            self.stop_rows, self.stop_idx = self._bars(
                sig.stop_price, "stop_price", n, g, group_row
            )
        elif sig.stop_pct is not None:
            self.stop_rows, self.stop_idx = self._level(sig.stop_pct, "stop_pct", n, g, group_row)
        else:
            self.stop_rows, self.stop_idx = self._combo(levels.stop_pct, "stop_pct", m)
        if self.stop_mode == LEVEL_FRACTION:
            self.stop_rows = self.stop_rows / 100.0

        self.target_mode = LEVEL_FRACTION
        if sig.target_price is not None:
            self.target_mode = LEVEL_PRICE
            tp = sig.target_price
            if isinstance(tp, np.ndarray) and tp.ndim == 3:  # a batch's (G, K, n) targets
                if tp.shape[0] != g or tp.shape[2] != n:
                    raise ValueError(
                        f"target_price of a batch must have shape ({g}, K, {n}), got {tp.shape}"
                    )
                self.target_rows = np.ascontiguousarray(tp, dtype=np.float64)
                self.target_idx = group_row
            else:
                listed = isinstance(tp, (list, tuple))
                rows = (
                    [self._bars(t, "target_price", n, g, group_row)[0] for t in tp]
                    if listed
                    else [self._bars(tp, "target_price", n, g, group_row)[0]]
                )
                if all(r.shape[0] == 1 for r in rows):
                    self.target_idx = np.zeros(len(group_row), dtype=np.int64)
                else:
                    rows = [np.broadcast_to(r, (g, n)) for r in rows]
                    self.target_idx = group_row
                self.target_rows = np.ascontiguousarray(np.stack(rows, axis=1))
            n_rows, k = self.target_rows.shape[:2]
            parts = np.full(n_rows, k, dtype=np.int64)
            if sig.parts is not None:
                parts = np.broadcast_to(np.asarray(sig.parts, dtype=np.int64), (n_rows,)).copy()
                if parts.min() < 1 or parts.max() > k:
                    raise ValueError(f"parts must be between 1 and {k} (the targets given)")
            self.parts = parts
        else:
            if sig.target_pct is not None:
                rows, idx = self._level(sig.target_pct, "target_pct", n, g, group_row)
            else:
                rows, idx = self._combo(levels.target_pct, "target_pct", m)
            self.target_rows = np.ascontiguousarray(rows[:, None, :] / 100.0)
            self.target_idx = idx
            self.parts = np.ones(len(rows), dtype=np.int64)

        if sig.size is not None:
            self.size_rows, self.size_idx = self._level(sig.size, "size", n, g, group_row)
        elif levels.size is not None:
            self.size_rows, self.size_idx = self._combo(levels.size, "size", m)
        else:
            self.size_rows, self.size_idx = None, np.empty(0, dtype=np.int64)
        if self.size_rows is not None:
            bad = ~((self.size_rows > 0.0) & (self.size_rows <= 1.0))
            if bad.any():
                raise ValueError("size must be a fraction of equity in (0, 1]")

    @staticmethod
    def _bars(value, name, n, g, group_row):
        """Per-bar rows (one per signal row, or one shared) and their index per combination."""
        if value is None:
            return None, np.empty(0, dtype=np.int64)
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape == (n,) or arr.ndim == 0:
            return per_bar(arr, n, name)[None, :], np.zeros(len(group_row), dtype=np.int64)
        return per_bar(arr, n, name, np.float64, g), group_row

    @staticmethod
    def _level(value, name, n, g, group_row):
        """A level from signals: a number, one per bar, or (in a batch) one per row."""
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return arr.reshape(1, 1).copy(), np.zeros(len(group_row), dtype=np.int64)
        if arr.shape == (g, 1):
            return np.ascontiguousarray(arr), group_row
        return _Inputs._bars(arr, name, n, g, group_row)

    @staticmethod
    def _combo(value, name, m):
        """A level from ``levels``: none, one number, or one per combination."""
        if value is None:
            return np.full((1, 1), np.nan), np.zeros(m, dtype=np.int64)
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return arr.reshape(1, 1).copy(), np.zeros(m, dtype=np.int64)
        if arr.shape != (m,):
            raise ValueError(f"levels: {name} must be a number or one per combination")
        return np.ascontiguousarray(arr.reshape(m, 1)), np.arange(m, dtype=np.int64)


def _levels(strategy, p: Params) -> Levels:
    fn = getattr(strategy, "levels", None)
    if fn is None:
        return Levels()
    out = fn(p)
    if out is None:
        return Levels()
    if not isinstance(out, Levels):
        raise TypeError(f"{strategy.key}.levels must return Levels(...), got {type(out).__name__}")
    return out


def _fill_costs(strategy, costs) -> tuple[float, float]:
    """Commission and slippage fractions the simulator charges on fills (none when the
    strategy prices its costs into its own signals: ``simulator_costs = False``)."""
    if getattr(strategy, "simulator_costs", True):
        return cost_fractions(costs)
    return 0.0, 0.0


def _risk_names(space) -> tuple[str, ...]:
    return space.names_with_role("exit", "sizing")


# --------------------------------------------------------------------------- public


def run(strategy, ctx, params: dict, costs) -> BacktestResult:
    """One detailed backtest of validated-or-raw ``params`` (trades, equity)."""
    space = strategy.parameter_space()
    p = space.validate_params(params)
    data = strategy.bars(ctx)
    n = len(data)
    sig = _call_signals(strategy, ctx, _signal_params(space, p), costs)
    lv = _levels(strategy, Params({k: p[k] for k in _risk_names(space)}))
    rows = _stack([sig], n)
    zero = np.zeros(1, dtype=np.int64)
    x = _Inputs(rows, lv, n, 1, 1, zero)
    comm, slip = _fill_costs(strategy, costs)
    equity = np.empty(n)
    in_pos = np.empty(n, dtype=np.bool_)
    bufs = allocate_trade_buffers(n)
    ti = x.target_idx[0]
    count = simulate_parts(
        data.open, data.high, data.low, data.close, x.entries[0], x.exits[0],
        x.stop_rows[x.stop_idx[0]], x.stop_mode, x.target_rows[ti], x.parts[ti], x.target_mode,
        comm, slip, float(costs.initial_equity), equity, in_pos, *bufs,
        parts_work(x.target_rows.shape[1], n),
        None if x.limit_rows is None else x.limit_rows[x.limit_idx[0]],
        None if x.flow_rows is None else x.flow_rows[x.flow_idx[0]],
        bool(strategy.hedged), int(costs.signal_delay_bars),
        None if x.size_rows is None else x.size_rows[x.size_idx[0]],
    )  # fmt: skip
    return result_from_buffers(data, equity, in_pos, bufs, count, float(costs.initial_equity))


def signals_for(strategy, ctx, params: dict, costs) -> Signals:
    """The :class:`Signals` of one raw-or-validated parameter set, exactly as :func:`run`
    computes them: the parameters are validated and only the signal-role ones reach
    ``strategy.signals`` (with ``costs`` when it takes them).  For tools that inspect signals
    without simulating (e.g. :mod:`backtestlab.engine.checks`)."""
    space = strategy.parameter_space()
    p = space.validate_params(params)
    return _call_signals(strategy, ctx, _signal_params(space, p), costs)


def strategy_warmup(strategy, params) -> int | datetime.timedelta:
    """``strategy.warmup`` of validated-or-raw ``params`` (all of them, as :class:`Params`)."""
    return strategy.warmup(Params(strategy.parameter_space().validate_params(params)))


def warmup_bars(strategy, params, bar_seconds: int) -> int:
    """``strategy.warmup(params)`` in bars: a whole number of bars, or a
    :class:`datetime.timedelta` (history measured in time, e.g. funding periods) rounded up
    to bars of ``bar_seconds``.  ``warmup`` gets :class:`Params` like ``signals``."""
    w = strategy_warmup(strategy, params)
    if isinstance(w, datetime.timedelta):
        return math.ceil(w.total_seconds() / bar_seconds)
    return int(w)


def _decode(space, cols: dict[str, np.ndarray], names: Sequence[str], k: int) -> dict:
    """Python values of combination ``k`` from the float64 columns."""
    out = {}
    for name in names:
        prm = space[name]
        v = cols[name][k]
        if prm.kind == "choice":
            out[name] = prm.choices[int(v)]
        elif prm.kind == "int":
            out[name] = int(v)
        elif prm.kind == "bool":
            out[name] = bool(v)
        else:
            out[name] = float(v)
    return out


def run_many(strategy, ctx, param_list: Sequence[dict], costs) -> np.ndarray:
    """Metrics matrix, shape ``(len(param_list), N_METRICS)``; row k equals
    ``compute_row(run(strategy, ctx, param_list[k], costs))`` exactly."""
    if costs.signal_delay_bars:
        raise ValueError("signal_delay_bars is a stress scenario of single runs (Strategy.run)")
    m = len(param_list)
    out = np.empty((m, N_METRICS), dtype=np.float64)
    if m == 0:
        return out
    space = strategy.parameter_space()
    cols = param_columns(space, param_list)
    sig_names = space.names_with_role("signal")
    if sig_names:
        keys = np.column_stack([cols[n] for n in sig_names])
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    else:
        inverse = np.zeros(m, dtype=np.int64)
        first = np.zeros(1, dtype=np.int64)
    n_groups = len(first)
    risk = _risk_names(space)
    lv = (
        _levels(strategy, Params({k: cols[k] for k in risk}))
        if risk
        else _levels(strategy, Params({}))
    )
    data = strategy.bars(ctx)
    n = len(data)
    comm, slip = _fill_costs(strategy, costs)
    bpy = bars_per_year(data.timeframe)
    per_batch = max(1, BATCH_CELLS // max(n, 1))
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(0, n_groups + per_batch, per_batch))
    for b, g0 in enumerate(range(0, n_groups, per_batch)):
        g1 = min(g0 + per_batch, n_groups)
        sig = _call_batch(strategy, ctx, space, cols, sig_names, first[g0:g1], costs, n)
        combos = np.ascontiguousarray(order[bounds[b] : bounds[b + 1]])
        group_row = (inverse - g0).astype(np.int64)  # only read for this batch's combos
        x = _Inputs(sig, lv, n, g1 - g0, m, group_row)
        sweep_kernel(
            data.ts, data.open, data.high, data.low, data.close, x.entries, x.exits, group_row,
            x.stop_rows, x.stop_idx, x.stop_mode, x.target_rows, x.target_idx, x.parts,
            x.target_mode, x.limit_rows, x.limit_idx, x.flow_rows, x.flow_idx, x.size_rows,
            x.size_idx, bool(strategy.hedged), comm, slip, float(costs.initial_equity), bpy,
            combos, out,
        )  # fmt: skip
    return out
