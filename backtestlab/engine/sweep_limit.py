"""The limit the engine's sweep is measured against: one hand-written compiled loop.

``make bench`` times the 900-combination ``sma_cross`` sweep through the engine (signals
shared by combinations, the one simulator, the one metrics) and through :func:`limit_loop`,
what a quant would write by hand in numba for this one strategy: per combination, one pass
over the bars that reads the two SMAs (computed once per window, as anyone would), detects
the crosses, fills orders, marks equity and folds the curve statistics, then the same
finishing formulas (:func:`~backtestlab.engine.metrics.curve_metrics`,
:func:`~backtestlab.engine.metrics.trade_metrics`).  It re-implements sma_cross's rules
(long only, next-open fills, stop before target inside a bar, gaps fill at the open, the
close-out at zero, the last bar's ``"end"`` exit, costs) independently of the simulator, so
its numbers are also a cross-check of the engine (``tests/engine/test_sweep_limit.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .metrics import N_METRICS, curve_metrics, trade_metrics


@njit(cache=True, error_model="numpy", inline="always")
def _proceeds(base, qty, fill_in, fill, comm):
    eq = base + qty * (fill - fill_in) - comm * qty * fill
    return eq if eq > 0.0 else 0.0


@njit(cache=True, error_model="numpy")
def limit_loop(
    ts, open_, high, low, close, smas, fast_row, slow_row, fast_w, slow_w, stop_frac,
    target_frac, comm, slip, initial_equity, bpy, out,
):  # fmt: skip
    n = close.shape[0]
    moved = np.empty(n)
    e_idx = np.empty(n, dtype=np.int64)
    x_idx = np.empty(n, dtype=np.int64)
    pnl = np.empty(n)
    for k in range(fast_row.shape[0]):
        fs = smas[fast_row[k]]
        ss = smas[slow_row[k]]
        trades_ok = fast_w[k] < slow_w[k]
        cash = initial_equity
        in_pos = False
        pend_entry = False
        pend_exit = False
        base = 0.0
        qty = 0.0
        fill_in = 0.0
        stop = 0.0
        target = 0.0
        wipe = 0.0
        eq_before = 0.0
        entry_i = 0
        count = 0
        peak = initial_equity
        trough = initial_equity
        mdd = 0.0
        held = 0
        s = 0.0
        dsq = 0.0
        n_moved = 0
        prev = initial_equity
        for i in range(n):
            o = open_[i]
            held_bar = False
            if pend_exit and in_pos:
                fill = o * (1.0 - slip)
                cash = _proceeds(base, qty, fill_in, fill, comm)
                e_idx[count] = entry_i
                x_idx[count] = i
                pnl[count] = (cash / eq_before - 1.0) * 100.0
                count += 1
                in_pos = False
            pend_exit = False
            if pend_entry and not in_pos and cash > 0.0:
                fill_in = o * (1.0 + slip)
                eq_before = cash
                base = cash / (1.0 + comm)
                qty = base / fill_in
                wipe = fill_in - base / qty
                stop = fill_in * (1.0 - stop_frac[k])
                target = fill_in * (1.0 + target_frac[k])
                entry_i = i
                in_pos = True
            pend_entry = False
            if in_pos:
                held_bar = True
                stp = wipe if wipe > stop else stop
                px = -1.0
                if low[i] <= stp:
                    px = o if o <= stp else stp
                elif high[i] >= target:
                    px = o if o >= target else target
                if px >= 0.0:
                    fill = px * (1.0 - slip)
                    cash = _proceeds(base, qty, fill_in, fill, comm)
                    e_idx[count] = entry_i
                    x_idx[count] = i
                    pnl[count] = (cash / eq_before - 1.0) * 100.0
                    count += 1
                    in_pos = False
            c = close[i]
            # A position still open at the last close is only marked (not a closed trade,
            # no exit costs); signals on the last close have nothing left to act on.
            up = False
            down = False
            if trades_ok and i > 0:
                up = fs[i] > ss[i] and fs[i - 1] <= ss[i - 1]
                down = fs[i] < ss[i] and fs[i - 1] >= ss[i - 1]
            if in_pos:
                eq = base + qty * (c - fill_in)
                if eq < 0.0:
                    eq = 0.0
                pend_exit = down
            else:
                eq = cash
                pend_entry = up
            # The curve statistics, folded bar by bar.
            if eq > peak:
                peak = eq
                trough = eq
            elif eq < trough:
                trough = eq
                if peak > 0.0:
                    dd = eq / peak - 1.0
                    if dd < mdd:
                        mdd = dd
            if held_bar:
                held += 1
            if eq != prev and prev > 0.0:
                r = eq / prev - 1.0
                s += r
                moved[n_moved] = r
                n_moved += 1
                if r < 0.0:
                    dsq += r * r
            prev = eq
        for j in range(N_METRICS):
            out[k, j] = np.nan
        if n > 0:
            curve_metrics(ts, n, prev, mdd, held, s, dsq, moved, n_moved, bpy, initial_equity,
                          out[k])  # fmt: skip
        trade_metrics(ts, e_idx, x_idx, pnl, count, out[k])
