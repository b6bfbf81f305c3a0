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
and ``atr_multiple`` have three targets, handed to the engine as a list: the engine's partial
exits (:func:`~backtestlab.engine.simulate.simulate_parts`) model them as three equal
sub-positions with the same entry and stop and targets TP1, TP2, TP3, reported as one trade
per group position.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..data import MarketData
from ..indicators import atr
from ..parameters import Param, ParameterSpace
from ..signals import Signals
from ..smc_zones import (
    ATR_PERIOD,
    ENTRY_METHODS,
    MAX_ZONE_AGE,
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
from .base import Strategy

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
def zone_orders_rows(
    armed_rows, lifecycle_of_row, z_entries, z_offsets, c_bar, c_dir, c_bot, c_top,
    cand_start, cand_stop, pattern_of_row, atr_, swing_hi, swing_lo, sl_buffer_pct, tp_method,
    rr_target, side_out, limit_out, stop_out, targets_out,
):  # fmt: skip
    """:func:`zone_orders` for each row: its pattern's candidates, its lifecycle
    (``armed_rows[lifecycle_of_row[r]]`` and that lifecycle's slice of ``z_entries``)."""
    for r in range(side_out.shape[0]):
        a = cand_start[pattern_of_row[r]]
        b = cand_stop[pattern_of_row[r]]
        lc = lifecycle_of_row[r]
        zone_orders(
            armed_rows[lc], c_bar[a:b], c_dir[a:b], c_bot[a:b], c_top[a:b],
            z_entries[z_offsets[lc] : z_offsets[lc + 1]], atr_, swing_hi, swing_lo,
            sl_buffer_pct[r], tp_method[r], rr_target[r], side_out[r], limit_out[r],
            stop_out[r], targets_out[r], True,
        )  # fmt: skip


class SmcContext:
    """Per-dataset cache: ATR, swing extremes and each pattern's raw zones, computed once."""

    def __init__(self, data: MarketData):
        self.data = data
        self.atr = atr(data.high, data.low, data.close, ATR_PERIOD)
        self.swing_hi, self.swing_lo = rolling_extremes(data.high, data.low, SWING_LOOKBACK)
        self._candidates: dict[str, tuple] = {}
        self._lifecycles: dict[tuple, tuple] = {}

    def cached(self, key, compute):
        """``compute()`` once per ``key`` (a zone lifecycle)."""
        if key not in self._lifecycles:
            self._lifecycles[key] = compute()
        return self._lifecycles[key]

    def candidates(self, pattern_type: str) -> tuple:
        cand = self._candidates.get(pattern_type)
        if cand is None:
            d = self.data
            cand = detect_candidates(
                pattern_code(pattern_type), d.open, d.high, d.low, d.close, SWING_LOOKBACK
            )
            self._candidates[pattern_type] = cand
        return cand


_LIFECYCLE_PARAMS = ("pattern_type", "min_zone_pct", "use_overlap", "entry_method")


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

    parameters = ParameterSpace(
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

    def prepare(self, data: MarketData, companions=None) -> SmcContext:
        return SmcContext(data)

    def lifecycle(self, ctx: SmcContext, p) -> tuple[np.ndarray, np.ndarray]:
        """Armed zone per close and entry level per zone, once per zone setting."""
        key = (p["pattern_type"], p["min_zone_pct"], p["use_overlap"], p["entry_method"])

        def compute():
            d = ctx.data
            c_bar, c_dir, c_bot, c_top = ctx.candidates(p["pattern_type"])
            return lifecycle(
                d.high, d.low, d.close, ctx.atr, c_bar, c_dir, c_bot, c_top,
                float(p["min_zone_pct"]), bool(p["use_overlap"]),
                ENTRY_METHODS.index(p["entry_method"]),
            )  # fmt: skip

        return ctx.cached(key, compute)

    def signals(self, ctx: SmcContext, p) -> Signals:
        n = len(ctx.data)
        armed, z_entry = self.lifecycle(ctx, p)
        side = np.empty(n, dtype=np.int8)
        limit = np.empty(n)
        stop = np.empty(n)
        targets = np.empty((N_TARGETS, n))
        tp = TP_METHODS.index(p["tp_method"])
        zone_orders(
            armed, *ctx.candidates(p["pattern_type"]), z_entry, ctx.atr, ctx.swing_hi,
            ctx.swing_lo, float(p["sl_buffer_pct"]), tp, float(p["rr_target"]),
            side, limit, stop, targets,
        )  # fmt: skip
        # fixed_rr: one target for the whole position; else TP1/TP2/TP3 thirds.
        target = targets[0] if tp == TP_FIXED else list(targets)
        return Signals(entries=side, limit=limit, stop_price=stop, target_price=target)

    def signals_batch(self, ctx: SmcContext, p) -> Signals:
        """The orders of many parameter sets (``p``: a column per parameter) in one compiled
        loop, the same as ``signals`` row by row; a zone lifecycle is computed once per
        (pattern, min zone, overlap, entry) setting."""
        g, n = len(p.rr_target), len(ctx.data)
        patterns = sorted(set(p.pattern_type), key=PATTERN_TYPES.index)
        starts = np.zeros(len(PATTERN_TYPES), dtype=np.int64)
        stops = np.zeros(len(PATTERN_TYPES), dtype=np.int64)
        parts, offset = [], 0
        for name in patterns:
            cand = ctx.candidates(name)
            code = PATTERN_TYPES.index(name)
            starts[code] = offset
            offset += len(cand[0])
            stops[code] = offset
            parts.append(cand)
        c_bar, c_dir, c_bot, c_top = (np.concatenate([part[j] for part in parts]) for j in range(4))
        keys = list(zip(p.pattern_type, p.min_zone_pct, p.use_overlap, p.entry_method, strict=True))
        settings = list(dict.fromkeys(keys))
        index = {key: j for j, key in enumerate(settings)}
        cycles = [
            self.lifecycle(ctx, dict(zip(_LIFECYCLE_PARAMS, key, strict=True))) for key in settings
        ]
        armed = np.stack([c[0] for c in cycles])
        z_offsets = np.cumsum([0, *(len(c[1]) for c in cycles)]).astype(np.int64)
        z_entries = np.concatenate([c[1] for c in cycles]) if cycles else np.empty(0)
        tp = np.array([TP_METHODS.index(t) for t in p.tp_method], dtype=np.int64)
        side = np.empty((g, n), dtype=np.int8)
        limit = np.empty((g, n))
        stop = np.empty((g, n))
        targets = np.empty((g, N_TARGETS, n))
        zone_orders_rows(
            armed, np.array([index[k] for k in keys], dtype=np.int64), z_entries, z_offsets,
            c_bar, c_dir, c_bot, c_top, starts, stops,
            np.array([PATTERN_TYPES.index(t) for t in p.pattern_type], dtype=np.int64),
            ctx.atr, ctx.swing_hi, ctx.swing_lo, p.sl_buffer_pct.astype(np.float64), tp,
            p.rr_target.astype(np.float64), side, limit, stop, targets,
        )  # fmt: skip
        return Signals(
            entries=side,
            limit=limit,
            stop_price=stop,
            target_price=targets,
            parts=np.where(tp == TP_FIXED, 1, N_TARGETS),
        )

    def warmup(self, p) -> int:
        """A zone rests up to MAX_ZONE_AGE bars, found on swings of SWING_LOOKBACK bars with
        levels from a Wilder ATR (smoothed: ~25 periods to agree to 1e-9)."""
        return MAX_ZONE_AGE + SWING_LOOKBACK + 25 * ATR_PERIOD
