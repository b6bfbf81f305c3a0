"""Smart-money-concept zones: fair value gaps, order blocks, liquidity sweeps.

``detect_historical`` has the seed's meaning: it scans OHLCV once, saves nothing, and a zone
exists only from the close of the bar that completes it (no look-ahead).  The same compiled
pass (:func:`zone_lifecycle`) produces both the zone list and the zone armed at each close
for the SMC strategy, so what the detector reports is exactly what the backtest trades.

Patterns (bar ``i`` is the completing bar; ``H``/``L`` highs/lows)
------------------------------------------------------------------
``imbalance`` (fair value gap)
    bullish when ``L[i] > H[i-2]``: zone ``[H[i-2], L[i]]``; bearish when ``H[i] < L[i-2]``:
    zone ``[H[i], L[i-2]]``.
``order_block``
    bullish when bar ``i-1`` is bearish (close < open) and bar ``i`` closes above ``H[i-1]``:
    zone ``[L[i-1], H[i-1]]`` (the last down candle before the displacement); bearish mirrored
    (bar ``i-1`` bullish, bar ``i`` closes below ``L[i-1]``).
``liquidity_sweep``
    bullish when ``L[i]`` takes out the lowest low of the previous ``SWING_LOOKBACK`` bars and
    bar ``i`` closes back above it: zone ``[L[i], swept low]``; bearish mirrored with highs.
    An outside bar can sweep both sides; both zones are then recorded.

Zone lifecycle
--------------
* Validation when completed: no zone is accepted before ATR(14) is defined (the first 13
  bars); the height must be at least ``min_zone_pct`` percent of the completing close
  (``MIN_ZONE_PERCENT`` = 0.15 by default) and, when ``use_overlap`` is on, a
  zone whose overlap with an earlier still-valid zone of the same direction is at least
  ``OVERLAP_THRESHOLD`` (70 %) of its own height is skipped (a duplicate).
* An accepted zone rests one limit order at its entry level from the next bar on.  The order
  is consumed at the first later bar that trades at the entry level (a long zone:
  ``low <= entry``; a short zone: ``high >= entry``) - whether or not the strategy was flat
  to take it.  The zone itself stays valid until a close beyond its far edge (a long zone:
  ``close < bottom``) invalidates it or it expires after ``MAX_ZONE_AGE`` bars; "still valid"
  in the overlap rule means exactly this.  At most ``MAX_LIVE_ZONES`` zones are valid at
  once; the oldest gives way.
* Each close arms one order for the next bar: among valid zones whose order still rests, the
  one whose entry level is nearest to the close (either direction; on a tie the later zone).
  The simulator's limit-entry rules then decide the fill.

Trading levels (``R`` = |entry - stop|, ``h`` = zone height)
------------------------------------------------------------
* entry: ``zone_edge`` = the near edge (top of a long zone, bottom of a short one),
  ``zone_mid`` = the middle, ``atr_buffer`` = the near edge moved ``ATR_ENTRY_BUFFER`` x
  ATR(14) towards the market (fills earlier, as production's "zone edge + ATR buffer").
* stop: beyond the far edge by ``sl_buffer_pct`` percent of ``h``.
* targets: ``fixed_rr`` one target at ``rr_target`` x R.  ``swing_target`` three targets at
  1/3, 2/3 and 3/3 of D, with D the distance to the swing extreme of the last
  ``SWING_LOOKBACK`` bars (highest high for longs) but at least ``rr_target`` x R.
  ``atr_multiple`` three targets at 1/3, 2/3, 3/3 of ``rr_target`` x ATR(14) (rr 3 gives the
  classic 1/2/3 ATR).  ATR and swing extremes are those of the zone's completing bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .data import MarketData
from .indicators import atr

PATTERN_TYPES: tuple[str, ...] = ("imbalance", "order_block", "liquidity_sweep")
ENTRY_METHODS: tuple[str, ...] = ("zone_edge", "zone_mid", "atr_buffer")
TP_METHODS: tuple[str, ...] = ("fixed_rr", "swing_target", "atr_multiple")

MIN_ZONE_PERCENT = 0.15  # percent of price
OVERLAP_THRESHOLD = 0.70  # share of the new zone's height
SWING_LOOKBACK = 20  # bars: swept swing levels and swing targets
ATR_PERIOD = 14
ATR_ENTRY_BUFFER = 0.2  # x ATR, for entry_method="atr_buffer"
MAX_ZONE_AGE = 100  # bars a zone's order rests before it expires
MAX_LIVE_ZONES = 64
N_TARGETS = 3

ENTRY_EDGE, ENTRY_MID, ENTRY_ATR = range(3)
TP_FIXED, TP_SWING, TP_ATR = range(3)


@njit(cache=True, error_model="numpy")
def rolling_extremes(high, low, n):
    """Highest high and lowest low of bars ``i-n+1 .. i`` (shorter at the start)."""
    m = high.shape[0]
    hh = np.empty(m)
    ll = np.empty(m)
    for i in range(m):
        a = high[i]
        b = low[i]
        for j in range(max(0, i - n + 1), i):
            if high[j] > a:
                a = high[j]
            if low[j] < b:
                b = low[j]
        hh[i] = a
        ll[i] = b
    return hh, ll


@njit(cache=True, error_model="numpy")
def detect_candidates(pattern, open_, high, low, close, swing_n):
    """Raw zones of one pattern, in completion order.

    Returns ``(bar, direction, bottom, top)``; ``direction`` is +1 (bullish, long) or -1.
    No validation here: that needs parameters and lives in :func:`zone_pass`.
    """
    n = high.shape[0]
    bar = np.empty(2 * n, dtype=np.int64)
    dirn = np.empty(2 * n, dtype=np.int8)
    bot = np.empty(2 * n)
    top = np.empty(2 * n)
    k = 0
    for i in range(n):
        if pattern == 0:
            if i < 2:
                continue
            if low[i] > high[i - 2]:
                bar[k] = i
                dirn[k] = 1
                bot[k] = high[i - 2]
                top[k] = low[i]
                k += 1
            elif high[i] < low[i - 2]:
                bar[k] = i
                dirn[k] = -1
                bot[k] = high[i]
                top[k] = low[i - 2]
                k += 1
        elif pattern == 1:
            if i < 1:
                continue
            if close[i - 1] < open_[i - 1] and close[i] > high[i - 1]:
                bar[k] = i
                dirn[k] = 1
                bot[k] = low[i - 1]
                top[k] = high[i - 1]
                k += 1
            elif close[i - 1] > open_[i - 1] and close[i] < low[i - 1]:
                bar[k] = i
                dirn[k] = -1
                bot[k] = low[i - 1]
                top[k] = high[i - 1]
                k += 1
        else:
            if i < swing_n:
                continue
            lo = low[i - 1]
            hi = high[i - 1]
            for j in range(i - swing_n, i - 1):
                if low[j] < lo:
                    lo = low[j]
                if high[j] > hi:
                    hi = high[j]
            if low[i] < lo and close[i] > lo:
                bar[k] = i
                dirn[k] = 1
                bot[k] = low[i]
                top[k] = lo
                k += 1
            if high[i] > hi and close[i] < hi:
                bar[k] = i
                dirn[k] = -1
                bot[k] = hi
                top[k] = high[i]
                k += 1
    return bar[:k].copy(), dirn[:k].copy(), bot[:k].copy(), top[:k].copy()


@njit(cache=True, error_model="numpy", inline="always")
def _move_zone(src, dst, l_cand, l_bar, l_dir, l_bot, l_top, l_entry, l_open):
    l_open[dst] = l_open[src]
    l_cand[dst] = l_cand[src]
    l_bar[dst] = l_bar[src]
    l_dir[dst] = l_dir[src]
    l_bot[dst] = l_bot[src]
    l_top[dst] = l_top[src]
    l_entry[dst] = l_entry[src]


@njit(cache=True, error_model="numpy")
def zone_lifecycle(
    high,
    low,
    close,
    atr_,
    c_bar,
    c_dir,
    c_bot,
    c_top,
    min_zone_pct,
    use_overlap,
    entry_method,
    z_status,
    z_entry,
    z_touch,
    z_end,
    armed,
):
    """Validate zones, run their lifecycle and pick the zone armed at each close.

    Depends only on the pattern's zones, ``min_zone_pct``, ``use_overlap`` and
    ``entry_method`` (not on stops or targets), so a sweep runs it once per such group.

    Outputs per candidate ``k``: ``z_status`` 0 accepted, 1 too thin, 2 overlapping, 3 before
    ATR(14) is defined (no zone is traded in the warm-up); ``z_entry`` the entry level;
    ``z_touch`` the bar that traded at the entry level (its order's fill bar if the strategy
    was flat; -1: never); ``z_end`` the bar at which the zone was invalidated, expired or
    pushed out (-1: still valid at the end).  Per bar ``i``: ``armed[i]`` the candidate whose
    limit order is placed at the close of ``i`` for bar ``i + 1`` (-1: none).
    """
    n = close.shape[0]
    nc = c_bar.shape[0]
    nlive = 0  # live zones are slots 0 .. nlive-1 (removal swaps in the last one)
    l_cand = np.zeros(MAX_LIVE_ZONES, dtype=np.int64)
    l_bar = np.zeros(MAX_LIVE_ZONES, dtype=np.int64)
    l_dir = np.zeros(MAX_LIVE_ZONES, dtype=np.int8)
    l_bot = np.zeros(MAX_LIVE_ZONES)
    l_top = np.zeros(MAX_LIVE_ZONES)
    l_entry = np.zeros(MAX_LIVE_ZONES)
    l_open = np.zeros(MAX_LIVE_ZONES, dtype=np.bool_)  # its order still rests
    for k in range(nc):
        z_status[k] = 0
        z_entry[k] = np.nan
        z_touch[k] = -1
        z_end[k] = -1
    ci = 0
    for i in range(n):
        # 1. Bar i touches, invalidates or ages the zones that were valid before it.
        s = 0
        while s < nlive:
            if l_open[s] and (
                (l_dir[s] == 1 and low[i] <= l_entry[s])
                or (l_dir[s] == -1 and high[i] >= l_entry[s])
            ):
                l_open[s] = False
                z_touch[l_cand[s]] = i
            broken = (l_dir[s] == 1 and close[i] < l_bot[s]) or (
                l_dir[s] == -1 and close[i] > l_top[s]
            )
            if broken or i - l_bar[s] >= MAX_ZONE_AGE:
                z_end[l_cand[s]] = i
                nlive -= 1
                _move_zone(nlive, s, l_cand, l_bar, l_dir, l_bot, l_top, l_entry, l_open)
            else:
                s += 1
        # 2. Zones completed by bar i.
        while ci < nc and c_bar[ci] == i:
            d = c_dir[ci]
            bot = c_bot[ci]
            top = c_top[ci]
            h = top - bot
            a = atr_[i]
            if h <= 0.0 or h / close[i] * 100.0 < min_zone_pct:
                z_status[ci] = 1
                ci += 1
                continue
            if not a == a:
                z_status[ci] = 3
                ci += 1
                continue
            if use_overlap:
                dup = False
                for s in range(nlive):
                    if l_dir[s] == d:
                        inter = min(top, l_top[s]) - max(bot, l_bot[s])
                        if inter >= OVERLAP_THRESHOLD * h:
                            dup = True
                            break
                if dup:
                    z_status[ci] = 2
                    ci += 1
                    continue
            if entry_method == ENTRY_EDGE:
                entry = top if d == 1 else bot
            elif entry_method == ENTRY_MID:
                entry = 0.5 * (bot + top)
            else:
                entry = top + ATR_ENTRY_BUFFER * a if d == 1 else bot - ATR_ENTRY_BUFFER * a
            z_entry[ci] = entry
            # A free slot, else the oldest zone gives way.
            if nlive < MAX_LIVE_ZONES:
                slot = nlive
                nlive += 1
            else:
                slot = 0
                for s in range(1, nlive):
                    if l_bar[s] < l_bar[slot]:
                        slot = s
                z_end[l_cand[slot]] = i
            l_cand[slot] = ci
            l_bar[slot] = i
            l_dir[slot] = d
            l_bot[slot] = bot
            l_top[slot] = top
            l_entry[slot] = entry
            l_open[slot] = True
            ci += 1
        # 3. The order for bar i + 1: the live zone nearest to the close (tie: later zone).
        best = -1
        best_d = np.inf
        c = close[i]
        for s in range(nlive):
            if not l_open[s]:
                continue
            dist = abs(c - l_entry[s])
            if dist < best_d or (dist == best_d and l_cand[s] > l_cand[best]):
                best_d = dist
                best = s
        armed[i] = l_cand[best] if best >= 0 else -1


@njit(cache=True, error_model="numpy")
def zone_orders(
    armed,
    c_bar,
    c_dir,
    c_bot,
    c_top,
    z_entry,
    atr_,
    swing_hi,
    swing_lo,
    sl_buffer_pct,
    tp_method,
    rr_target,
    entry_side,
    entry_limit,
    stop,
    targets,
    sweep=False,
):
    """Per-bar orders from the armed zones: side, limit, stop and ``targets[0..2, i]``.

    Levels are computed once per zone (at its completing bar ``c``: ATR and swing extremes of
    that bar) and copied to every bar the zone is armed; NaN where nothing is armed.  With
    ``sweep`` (orders only read by the simulator) the levels of bars with no order (side 0)
    and the unused TP2/TP3 of ``fixed_rr`` are left unwritten: the simulator reads an order's
    levels only when its side is not 0, and one target only when there is one.
    """
    nc = c_bar.shape[0]
    z_stop = np.empty(nc)
    z_tp = np.empty((N_TARGETS, nc))
    for k in range(nc):
        entry = z_entry[k]
        if not entry == entry:
            continue
        d = c_dir[k]
        c = c_bar[k]
        buf = sl_buffer_pct / 100.0 * (c_top[k] - c_bot[k])
        stp = c_bot[k] - buf if d == 1 else c_top[k] + buf
        z_stop[k] = stp
        risk = abs(entry - stp)
        if tp_method == TP_FIXED:
            for t in range(N_TARGETS):
                z_tp[t, k] = entry + d * rr_target * risk
        else:
            if tp_method == TP_SWING:
                dist = swing_hi[c] - entry if d == 1 else entry - swing_lo[c]
                floor = rr_target * risk
                if not dist >= floor:
                    dist = floor
            else:
                dist = rr_target * atr_[c]
            for t in range(N_TARGETS):
                z_tp[t, k] = entry + d * dist * (t + 1) / N_TARGETS
    n_written = 1 if sweep and tp_method == TP_FIXED else N_TARGETS
    for i in range(armed.shape[0]):
        k = armed[i]
        if k >= 0:
            entry_side[i] = c_dir[k]
            entry_limit[i] = z_entry[k]
            stop[i] = z_stop[k]
            for t in range(n_written):
                targets[t, i] = z_tp[t, k]
        else:
            entry_side[i] = 0
            if not sweep:
                entry_limit[i] = np.nan
                stop[i] = np.nan
                for t in range(N_TARGETS):
                    targets[t, i] = np.nan


def pattern_code(pattern_type: str) -> int:
    try:
        return PATTERN_TYPES.index(pattern_type)
    except ValueError:
        raise ValueError(
            f"unknown pattern_type {pattern_type!r}; use one of {', '.join(PATTERN_TYPES)}"
        ) from None


def detect_historical(
    data: MarketData,
    pattern_type: str = "imbalance",
    *,
    skip_overlap: bool = False,
    min_zone_pct: float = MIN_ZONE_PERCENT,
    entry_method: str = "zone_edge",
) -> list[dict]:
    """Zones of one pattern over ``data``, nothing saved (the seed's ``detect_historical``).

    ``skip_overlap=True`` skips the 70 % overlap check (faster, may return duplicates).
    ``entry_method`` matters because a zone lives until price trades at its entry level.
    Each zone: ``bar``/``ts`` of completion, ``direction`` ("bullish"/"bearish"),
    ``zone_low``, ``zone_high``, ``entry``, ``touch_bar`` (price traded at the entry level;
    None: never) and ``end_bar`` (invalidated or expired; None: still valid at the end).
    """
    n = len(data)
    if n == 0:
        return []
    atr_arr = atr(data.high, data.low, data.close, ATR_PERIOD)
    c_bar, c_dir, c_bot, c_top = detect_candidates(
        pattern_code(pattern_type), data.open, data.high, data.low, data.close, SWING_LOOKBACK
    )
    status = np.empty(len(c_bar), dtype=np.int8)
    entry = np.empty(len(c_bar))
    touch = np.empty(len(c_bar), dtype=np.int64)
    end = np.empty(len(c_bar), dtype=np.int64)
    zone_lifecycle(
        data.high, data.low, data.close, atr_arr, c_bar, c_dir, c_bot, c_top,
        float(min_zone_pct), not skip_overlap, ENTRY_METHODS.index(entry_method),
        status, entry, touch, end, np.empty(n, dtype=np.int64),
    )  # fmt: skip
    return [
        {
            "pattern_type": pattern_type,
            "bar": int(c_bar[k]),
            "ts": int(data.ts[c_bar[k]]),
            "direction": "bullish" if c_dir[k] == 1 else "bearish",
            "zone_low": float(c_bot[k]),
            "zone_high": float(c_top[k]),
            "entry": float(entry[k]),
            "touch_bar": int(touch[k]) if touch[k] >= 0 else None,
            "end_bar": int(end[k]) if end[k] >= 0 else None,
        }
        for k in range(len(c_bar))
        if status[k] == 0
    ]
