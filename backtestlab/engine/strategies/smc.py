"""SMC zones (seed 003): trade fair value gaps, order blocks or liquidity sweeps.

Zones, their lifecycle and the trading levels are defined in
:mod:`backtestlab.engine.smc_zones`; this module turns them into backtests on the ONE
simulator (:func:`~backtestlab.engine.simulate.simulate_kernel`), with the ONE cost model and
the ONE metrics kernel.  Bullish zones are traded long, bearish zones short.

How a touch fills
-----------------
Zone entries are limit orders.  At the close of bar ``i`` the live zone whose entry level is
nearest to the close is armed as a limit order for bar ``i + 1`` (stop and targets as absolute
prices).  During bar ``i + 1`` a long order fills at the open if the bar opens at or below the
entry level (a gap into the zone: the better price), else at the entry level if the bar's low
reaches it; shorts mirror this.  Slippage worsens the fill like every fill.  On a bar filled at
the level (not the open) only the stop is checked in that bar: its high may have come before
the fill, so a target there is not trusted.  An order that does not fill is gone; the zone is
consumed by the touch anyway (see the lifecycle), so the next order is another zone's.  Orders
are only taken when flat: a zone touch never reverses an open position (no pyramiding).

TP1 / TP2 / TP3: three equal sub-positions
------------------------------------------
``fixed_rr`` has one target and is one simulator run with the whole equity.  ``swing_target``
and ``atr_multiple`` have three targets; the position is modelled as three equal
sub-positions (a third of the equity each) with the same entry and stop and targets TP1, TP2,
TP3, i.e. partial exits of a third at each target and the rest at the stop.  The TP3 third is
simulated first; because it exits last (same stop, furthest target), its entries are exactly
the group's, and the TP1 and TP2 thirds are simulated on those entry signals only, so the
three always enter together.  Equity is the sum of the three; each group position is reported
as one trade (entry, last exit, the quantity-weighted exit price, the reason of the last exit,
pnl of the whole group).  Each third compounds on its own (a third that took TP1 keeps its
profit for the next entry), which is the one way this differs from a single account that
re-splits its equity at every entry.  Partial exits live here rather than in the simulator,
so the one kernel every strategy uses keeps one position per account; the model is exact for
partial exits at fixed levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from ..backtest_result import BacktestResult
from ..data import MarketData
from ..indicators import atr
from ..metrics import N_METRICS, metrics_kernel
from ..parameters import Param, ParameterSpace
from ..simulate import (
    LEVEL_PRICE,
    allocate_trade_buffers,
    cost_fractions,
    result_from_buffers,
    simulate_kernel,
)
from ..smc_zones import (
    ATR_PERIOD,
    ENTRY_METHODS,
    MIN_ZONE_PERCENT,
    N_TARGETS,
    PATTERN_TYPES,
    SWING_LOOKBACK,
    TP_FIXED,
    TP_METHODS,
    detect_candidates,
    pattern_code,
    rolling_extremes,
    zone_lifecycle,
    zone_orders,
)
from ..timeframes import bars_per_year
from .base import Costs, Strategy

# The seed's grids.  5 x 4 x 4 x 3 x 2 x 2 = 960 combinations per symbol/timeframe/pattern.
DEFAULT_PARAMETER_GRID = {
    "rr_target": [1.5, 2.0, 2.5, 3.0, 3.5],
    "sl_buffer_pct": [5, 10, 15, 20],
    "min_zone_pct": [0.1, 0.15, 0.2, 0.25],
    "tp_method": ["fixed_rr", "swing_target", "atr_multiple"],
    "entry_method": ["zone_edge", "zone_mid"],
    "use_overlap": [True, False],
}
# 3 x 2 = 6 combinations per symbol/timeframe/pattern.
QUICK_PARAMETER_GRID = {
    "rr_target": [2.0, 2.5, 3.0],
    "sl_buffer_pct": [10, 15],
    "min_zone_pct": [0.15],
    "tp_method": ["fixed_rr"],
    "entry_method": ["zone_edge"],
    "use_overlap": [True],
}


@njit(cache=True, error_model="numpy")
def lifecycle(high, low, close, atr_, c_bar, c_dir, c_bot, c_top, min_zone, overlap, entry):
    """Armed zone per close and entry level per zone (see :func:`zone_lifecycle`)."""
    nc = c_bar.shape[0]
    z_status = np.empty(nc, dtype=np.int8)
    z_entry = np.empty(nc)
    z_touch = np.empty(nc, dtype=np.int64)
    z_end = np.empty(nc, dtype=np.int64)
    armed = np.empty(close.shape[0], dtype=np.int64)
    zone_lifecycle(
        high, low, close, atr_, c_bar, c_dir, c_bot, c_top, min_zone, overlap, entry,
        z_status, z_entry, z_touch, z_end, armed,
    )  # fmt: skip
    return armed, z_entry


@njit(cache=True, error_model="numpy")
def smc_backtest(
    open_, high, low, close, atr_, swing_hi, swing_lo, c_bar, c_dir, c_bot, c_top,
    armed, z_entry, sl_buffer_pct, tp_method, rr_target,
    comm, slip, initial_equity,
    equity_out, in_pos_out,
    t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason, delay=0,
):  # fmt: skip
    """One SMC backtest from a zone lifecycle; returns the number of (group) trades."""
    n = close.shape[0]
    side = np.empty(n, dtype=np.int8)
    limit = np.empty(n)
    stop = np.empty(n)
    targets = np.empty((N_TARGETS, n))
    zone_orders(
        armed, c_bar, c_dir, c_bot, c_top, z_entry, atr_, swing_hi, swing_lo,
        sl_buffer_pct, tp_method, rr_target, side, limit, stop, targets,
    )  # fmt: skip
    no_exit = np.zeros(n, dtype=np.bool_)
    if tp_method == TP_FIXED:
        return simulate_kernel(
            open_, high, low, close, side, no_exit, stop, LEVEL_PRICE, targets[0], LEVEL_PRICE,
            comm, slip, initial_equity, equity_out, in_pos_out,
            t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason, limit,
            None, False, delay,
        )  # fmt: skip
    third = initial_equity / N_TARGETS
    # The TP3 third exits last, so its entries are the group's entries.
    eq3 = np.empty(n)
    c3 = simulate_kernel(
        open_, high, low, close, side, no_exit, stop, LEVEL_PRICE, targets[2], LEVEL_PRICE,
        comm, slip, third, eq3, in_pos_out,
        t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason, limit,
        None, False, delay,
    )  # fmt: skip
    group_side = np.zeros(n, dtype=np.int8)
    for k in range(c3):
        j = t_entry_idx[k] - 1 - delay  # the signal bar of this entry
        group_side[j] = side[j]
    eq1 = np.empty(n)
    eq2 = np.empty(n)
    scratch_pos = np.empty(n, dtype=np.bool_)
    e1, x1, ep1, xp1, sd1, pn1, r1 = allocate_trade_buffers(n)
    e2, x2, ep2, xp2, sd2, pn2, r2 = allocate_trade_buffers(n)
    c1 = simulate_kernel(
        open_, high, low, close, group_side, no_exit, stop, LEVEL_PRICE, targets[0], LEVEL_PRICE,
        comm, slip, third, eq1, scratch_pos, e1, x1, ep1, xp1, sd1, pn1, r1, limit,
        None, False, delay,
    )  # fmt: skip
    c2 = simulate_kernel(
        open_, high, low, close, group_side, no_exit, stop, LEVEL_PRICE, targets[1], LEVEL_PRICE,
        comm, slip, third, eq2, scratch_pos, e2, x2, ep2, xp2, sd2, pn2, r2, limit,
        None, False, delay,
    )  # fmt: skip
    for i in range(n):
        equity_out[i] = eq1[i] + eq2[i] + eq3[i]
    # Merge the thirds into one trade per group position (written over the TP3 buffers,
    # which are read before being overwritten at the same index).
    s1 = third
    s2 = third
    s3 = third
    p1 = 0
    p2 = 0
    for k in range(c3):
        e = t_entry_idx[k]
        before = s3
        s3 = s3 * (1.0 + t_pnl[k] / 100.0)
        after = s3
        wx = before * t_exit_px[k]
        w = before
        # A third with zero equity skips an entry (shorts only); match thirds by entry bar.
        while p1 < c1 and e1[p1] < e:
            s1 = s1 * (1.0 + pn1[p1] / 100.0)
            p1 += 1
        if p1 < c1 and e1[p1] == e:
            before += s1
            wx += s1 * xp1[p1]
            w += s1
            s1 = s1 * (1.0 + pn1[p1] / 100.0)
            after += s1
            p1 += 1
        else:
            before += s1
            after += s1
        while p2 < c2 and e2[p2] < e:
            s2 = s2 * (1.0 + pn2[p2] / 100.0)
            p2 += 1
        if p2 < c2 and e2[p2] == e:
            before += s2
            wx += s2 * xp2[p2]
            w += s2
            s2 = s2 * (1.0 + pn2[p2] / 100.0)
            after += s2
            p2 += 1
        else:
            before += s2
            after += s2
        t_exit_px[k] = wx / w if w > 0.0 else t_exit_px[k]
        t_pnl[k] = (after / before - 1.0) * 100.0 if before > 0.0 else 0.0
    return c3


@njit(cache=True, error_model="numpy")
def _run_many_kernel(
    ts, open_, high, low, close, atr_, swing_hi, swing_lo,
    cand_start, cand_stop, c_bar, c_dir, c_bot, c_top,
    pattern, min_zone, overlap, entry, sl_buf, tp, rr, group, order,
    comm, slip, initial_equity, bpy, out,
):  # fmt: skip
    n = close.shape[0]
    equity = np.empty(n)
    in_pos = np.empty(n, dtype=np.bool_)
    e_idx, x_idx, e_px, x_px, t_side, pnl, reason = allocate_trade_buffers(n)
    armed = np.empty(0, dtype=np.int64)
    z_entry = np.empty(0)
    for j in range(order.shape[0]):
        k = order[j]
        a = cand_start[pattern[k]]
        b = cand_stop[pattern[k]]
        # ``order`` groups parameter sets sharing a lifecycle; compute it once per group.
        if j == 0 or group[k] != group[order[j - 1]]:
            armed, z_entry = lifecycle(
                high, low, close, atr_, c_bar[a:b], c_dir[a:b], c_bot[a:b], c_top[a:b],
                min_zone[k], overlap[k], entry[k],
            )  # fmt: skip
        count = smc_backtest(
            open_, high, low, close, atr_, swing_hi, swing_lo,
            c_bar[a:b], c_dir[a:b], c_bot[a:b], c_top[a:b],
            armed, z_entry, sl_buf[k], tp[k], rr[k],
            comm, slip, initial_equity, equity, in_pos,
            e_idx, x_idx, e_px, x_px, t_side, pnl, reason,
        )  # fmt: skip
        metrics_kernel(ts, equity, in_pos, e_idx, x_idx, pnl, count, bpy, initial_equity, out[k])


class SmcContext:
    """Per-dataset cache: ATR, swing extremes and each pattern's raw zones, computed once."""

    def __init__(self, data: MarketData):
        self.data = data
        self.atr = atr(data.high, data.low, data.close, ATR_PERIOD)
        self.swing_hi, self.swing_lo = rolling_extremes(data.high, data.low, SWING_LOOKBACK)
        self._candidates: dict[str, tuple] = {}

    def candidates(self, pattern_type: str) -> tuple:
        cand = self._candidates.get(pattern_type)
        if cand is None:
            d = self.data
            cand = detect_candidates(
                pattern_code(pattern_type), d.open, d.high, d.low, d.close, SWING_LOOKBACK
            )
            self._candidates[pattern_type] = cand
        return cand


class Smc(Strategy):
    key = "smc_zones"
    label = "SMC zones"
    description = (
        "Smart-money-concept zones (fair value gaps, order blocks, liquidity sweeps): a limit "
        "entry when price returns into a fresh zone, stop beyond the zone, one target at a "
        "reward/risk multiple or three (TP1/TP2/TP3, partial exits) at a swing or ATR distance."
    )
    data_kind = "candles"
    group_by = ("pattern_type",)
    presets = {
        "default": DEFAULT_PARAMETER_GRID,
        "quick": QUICK_PARAMETER_GRID,
    }

    _space = ParameterSpace(
        [
            Param(
                "pattern_type",
                "choice",
                "imbalance",
                choices=PATTERN_TYPES,
                label="Pattern",
                help="imbalance = fair value gap, order_block, liquidity_sweep",
            ),
            Param(
                "rr_target",
                "float",
                2.0,
                0.5,
                20,
                label="Reward/risk",
                help="fixed_rr: target at this multiple of the risk; other methods: its scale",
            ),
            Param(
                "sl_buffer_pct",
                "float",
                10.0,
                0,
                100,
                label="Stop buffer %",
                help="Stop beyond the far zone edge by this percent of the zone height",
            ),
            Param(
                "entry_method",
                "choice",
                "zone_edge",
                choices=ENTRY_METHODS,
                label="Entry",
                help="Limit price: near zone edge, zone middle, or edge + 0.2 ATR",
            ),
            Param(
                "tp_method",
                "choice",
                "fixed_rr",
                choices=TP_METHODS,
                label="Targets",
                help="fixed_rr: one target; swing_target / atr_multiple: TP1/TP2/TP3 thirds",
            ),
            Param(
                "min_zone_pct",
                "float",
                MIN_ZONE_PERCENT,
                0,
                20,
                label="Min zone %",
                help="Zones thinner than this percent of price are rejected",
            ),
            Param(
                "use_overlap",
                "bool",
                True,
                label="Skip overlaps",
                help="Skip a zone overlapping a still-valid one by 70 % or more",
            ),
        ]
    )

    def parameter_space(self) -> ParameterSpace:
        return self._space

    def prepare(self, data: MarketData, companions=None) -> SmcContext:
        return SmcContext(data)

    def run(self, ctx: SmcContext, params: dict, costs: Costs) -> BacktestResult:
        p = self._space.validate_params(params)
        data = ctx.data
        n = len(data)
        c_bar, c_dir, c_bot, c_top = ctx.candidates(p["pattern_type"])
        equity = np.empty(n)
        in_pos = np.empty(n, dtype=np.bool_)
        bufs = allocate_trade_buffers(n)
        comm, slip = cost_fractions(costs)
        armed, z_entry = lifecycle(
            data.high, data.low, data.close, ctx.atr, c_bar, c_dir, c_bot, c_top,
            float(p["min_zone_pct"]), bool(p["use_overlap"]),
            ENTRY_METHODS.index(p["entry_method"]),
        )  # fmt: skip
        count = smc_backtest(
            data.open, data.high, data.low, data.close, ctx.atr, ctx.swing_hi, ctx.swing_lo,
            c_bar, c_dir, c_bot, c_top, armed, z_entry,
            float(p["sl_buffer_pct"]), TP_METHODS.index(p["tp_method"]), float(p["rr_target"]),
            comm, slip, float(costs.initial_equity), equity, in_pos, *bufs,
            costs.signal_delay_bars,
        )  # fmt: skip
        return result_from_buffers(data, equity, in_pos, bufs, count, float(costs.initial_equity))

    def run_many(self, ctx: SmcContext, param_list: Sequence[dict], costs: Costs) -> np.ndarray:
        """Metrics for many parameter sets in one compiled loop (equal to ``run`` + compute)."""
        m = len(param_list)
        out = np.empty((m, N_METRICS), dtype=np.float64)
        if m == 0:
            return out
        valid = [self._space.validate_params(p) for p in param_list]
        patterns = sorted({p["pattern_type"] for p in valid}, key=PATTERN_TYPES.index)
        starts = np.zeros(len(PATTERN_TYPES), dtype=np.int64)
        stops = np.zeros(len(PATTERN_TYPES), dtype=np.int64)
        parts = []
        offset = 0
        for name in patterns:
            cand = ctx.candidates(name)
            code = PATTERN_TYPES.index(name)
            starts[code] = offset
            offset += len(cand[0])
            stops[code] = offset
            parts.append(cand)
        c_bar, c_dir, c_bot, c_top = (np.concatenate([part[j] for part in parts]) for j in range(4))
        keys = [
            (p["pattern_type"], p["min_zone_pct"], p["use_overlap"], p["entry_method"])
            for p in valid
        ]
        ids = {key: g for g, key in enumerate(dict.fromkeys(keys))}
        group = np.array([ids[key] for key in keys], dtype=np.int64)
        order = np.argsort(group, kind="stable")
        comm, slip = cost_fractions(costs)
        data = ctx.data
        _run_many_kernel(
            data.ts, data.open, data.high, data.low, data.close,
            ctx.atr, ctx.swing_hi, ctx.swing_lo, starts, stops, c_bar, c_dir, c_bot, c_top,
            np.array([PATTERN_TYPES.index(p["pattern_type"]) for p in valid], dtype=np.int64),
            np.array([p["min_zone_pct"] for p in valid], dtype=np.float64),
            np.array([p["use_overlap"] for p in valid], dtype=np.bool_),
            np.array([ENTRY_METHODS.index(p["entry_method"]) for p in valid], dtype=np.int64),
            np.array([p["sl_buffer_pct"] for p in valid], dtype=np.float64),
            np.array([TP_METHODS.index(p["tp_method"]) for p in valid], dtype=np.int64),
            np.array([p["rr_target"] for p in valid], dtype=np.float64), group, order,
            comm, slip, float(costs.initial_equity), bars_per_year(data.timeframe), out,
        )  # fmt: skip
        return out
