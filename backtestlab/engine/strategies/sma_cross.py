"""Reference strategy: long-only simple-moving-average crossover with stop and target.

Rules
-----
* Entry signal on the close of bar ``i`` when the fast SMA crosses above the slow one
  (``fast[i] > slow[i]`` and ``fast[i-1] <= slow[i-1]``, all four values defined); the
  position is opened at the open of bar ``i + 1``.
* Exit signal on the opposite cross (``fast[j] < slow[j]`` and ``fast[j-1] >= slow[j-1]``),
  filled at the open of bar ``j + 1``.
* Stop ``sl_pct`` % below the entry fill and target ``rr * sl_pct`` % above it, live from
  the entry bar (execution details in :mod:`backtestlab.engine.simulate`).  After a stop or
  target the strategy waits for the next fresh up-cross.
* ``fast >= slow`` is allowed but never trades (the "crossover" would be inverted, which is
  a different strategy); :meth:`ParameterSpace.check_constraints` reports it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ..backtest_result import BacktestResult
from ..data import MarketData
from ..indicators import sma
from ..metrics import N_METRICS, metrics_kernel
from ..parameters import Param, ParameterError, ParameterSpace
from ..simulate import (
    LEVEL_FRACTION,
    allocate_trade_buffers,
    cost_fractions,
    run_kernel,
    simulate_kernel,
)
from ..timeframes import bars_per_year
from .base import Costs, Strategy


@njit(cache=True, error_model="numpy")
def cross_signals(fast, slow, fast_n, slow_n, entry_out, exit_out):
    """Fill entry (+1 int8) and exit (bool) arrays from two SMA series.

    NaN comparisons are False, so warm-up bars never signal.
    """
    n = fast.shape[0]
    for i in range(n):
        entry_out[i] = 0
        exit_out[i] = False
    if fast_n >= slow_n:
        return
    for i in range(1, n):
        f0 = fast[i - 1]
        s0 = slow[i - 1]
        f1 = fast[i]
        s1 = slow[i]
        if f1 > s1 and f0 <= s0:
            entry_out[i] = 1
        elif f1 < s1 and f0 >= s0:
            exit_out[i] = True


@njit(cache=True, error_model="numpy")
def _run_many_kernel(
    ts,
    open_,
    high,
    low,
    close,
    smas,
    windows,
    fast_row,
    slow_row,
    stop_frac,
    target_frac,
    comm,
    slip,
    initial_equity,
    bpy,
    out,
):
    n = open_.shape[0]
    entry = np.zeros(n, dtype=np.int8)
    exit_ = np.zeros(n, dtype=np.bool_)
    equity = np.empty(n)
    in_pos = np.empty(n, dtype=np.bool_)
    e_idx, x_idx, e_px, x_px, t_side, pnl, reason = allocate_trade_buffers(n)
    last_f = -1
    last_s = -1
    for k in range(fast_row.shape[0]):
        fr = fast_row[k]
        sr = slow_row[k]
        # Combos are usually ordered so that (fast, slow) repeats across sl/rr values;
        # the signals only depend on the windows.
        if fr != last_f or sr != last_s:
            cross_signals(smas[fr], smas[sr], windows[fr], windows[sr], entry, exit_)
            last_f = fr
            last_s = sr
        count = simulate_kernel(
            open_,
            high,
            low,
            close,
            entry,
            exit_,
            stop_frac[k : k + 1],
            LEVEL_FRACTION,
            target_frac[k : k + 1],
            LEVEL_FRACTION,
            comm,
            slip,
            initial_equity,
            equity,
            in_pos,
            e_idx,
            x_idx,
            e_px,
            x_px,
            t_side,
            pnl,
            reason,
        )
        metrics_kernel(ts, equity, in_pos, e_idx, x_idx, pnl, count, bpy, initial_equity, out[k])


class SmaCrossContext:
    """Per-dataset cache: SMAs are computed once per window and reused across runs."""

    def __init__(self, data: MarketData):
        self.data = data
        self._sma: dict[int, np.ndarray] = {}

    def sma(self, window: int) -> np.ndarray:
        arr = self._sma.get(window)
        if arr is None:
            arr = sma(self.data.close, window)
            self._sma[window] = arr
        return arr


def _level_fractions(sl_pct: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stop and target distances as fractions of the entry fill.  Shared by ``run`` and
    ``run_many`` so both paths feed bit-identical levels to the simulator."""
    return sl_pct / 100.0, sl_pct * rr / 100.0


def _fast_lt_slow(params) -> str | None:
    if params["fast"] >= params["slow"]:
        return "fast must be smaller than slow; this combination never trades"
    return None


class SmaCross(Strategy):
    key = "sma_cross"
    label = "SMA crossover"
    description = (
        "Long when the fast simple moving average crosses above the slow one; exit on the "
        "opposite cross, a stop-loss or a take-profit at a multiple of the stop distance."
    )
    data_kind = "candles"

    _space = ParameterSpace(
        [
            Param("fast", "int", 10, 2, 500, label="Fast SMA", help="Fast window in bars"),
            Param("slow", "int", 50, 3, 2000, label="Slow SMA", help="Slow window in bars"),
            Param(
                "sl_pct",
                "float",
                2.0,
                0.1,
                50,
                label="Stop loss %",
                help="Stop distance below the entry fill, percent",
            ),
            Param(
                "rr",
                "float",
                2.0,
                0.1,
                20,
                label="Reward/risk",
                help="Take-profit distance as a multiple of the stop distance",
            ),
        ],
        constraints=[_fast_lt_slow],
    )

    def parameter_space(self) -> ParameterSpace:
        return self._space

    def prepare(self, data: MarketData, companions=None) -> SmaCrossContext:
        return SmaCrossContext(data)

    def run(self, ctx: SmaCrossContext, params: dict, costs: Costs) -> BacktestResult:
        p = self._space.validate_params(params)
        data = ctx.data
        n = len(data)
        entry = np.empty(n, dtype=np.int8)
        exit_ = np.empty(n, dtype=np.bool_)
        cross_signals(ctx.sma(p["fast"]), ctx.sma(p["slow"]), p["fast"], p["slow"], entry, exit_)
        stop, target = _level_fractions(np.array([p["sl_pct"]]), np.array([p["rr"]]))
        comm, slip = cost_fractions(costs)
        return run_kernel(
            data,
            entry,
            exit_,
            stop,
            LEVEL_FRACTION,
            target,
            LEVEL_FRACTION,
            comm,
            slip,
            float(costs.initial_equity),
            delay=costs.signal_delay_bars,
        )

    def _param_arrays(self, param_list: Sequence[dict]):
        space = self._space
        d = space.defaults()
        names = space.names
        cols = [[p.get(k, d[k]) for p in param_list] for k in names]
        ok = all(len(p) <= len(names) and all(k in d for k in p) for p in param_list)
        ok = ok and not any(type(v) is bool for col in cols for v in col)
        arrays = []
        if ok:
            try:
                arrays = [np.array(col, dtype=np.float64) for col in cols]
            except (TypeError, ValueError, OverflowError):
                ok = False
        if ok:
            # Vectorised checks keep a 900-combination sweep free of per-dict Python
            # validation; only on failure do we fall back to the exact per-value errors.
            for prm, arr in zip(space.params, arrays, strict=True):
                bad = ~np.isfinite(arr) | (arr < prm.low) | (arr > prm.high)
                if prm.kind == "int":
                    bad |= arr != np.floor(arr)
                if bad.any():
                    ok = False
                    break
        if not ok:
            for p in param_list:
                space.validate_params(p)
            raise ParameterError("parameter_grid", "invalid parameter values")
        fast, slow, sl, rr = arrays
        return fast.astype(np.int64), slow.astype(np.int64), sl, rr

    def run_many(
        self, ctx: SmaCrossContext, param_list: Sequence[dict], costs: Costs
    ) -> np.ndarray:
        """Metrics for many parameter sets in one compiled loop.

        ``param_list`` should come from a validated grid; values are bounds-checked here
        but not otherwise coerced.  Returns shape ``(len(param_list), N_METRICS)``.
        """
        m = len(param_list)
        out = np.empty((m, N_METRICS), dtype=np.float64)
        if m == 0:
            return out
        fast, slow, sl, rr = self._param_arrays(param_list)
        windows = np.unique(np.concatenate([fast, slow]))
        smas = np.empty((len(windows), len(ctx.data)), dtype=np.float64)
        for j, w in enumerate(windows):
            smas[j] = ctx.sma(int(w))
        fast_row = np.searchsorted(windows, fast)
        slow_row = np.searchsorted(windows, slow)
        stop, target = _level_fractions(sl, rr)
        comm, slip = cost_fractions(costs)
        data = ctx.data
        _run_many_kernel(
            data.ts,
            data.open,
            data.high,
            data.low,
            data.close,
            smas,
            windows,
            fast_row,
            slow_row,
            stop,
            target,
            comm,
            slip,
            float(costs.initial_equity),
            bars_per_year(data.timeframe),
            out,
        )
        return out
