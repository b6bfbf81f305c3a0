"""The ONE trade simulator.

:func:`simulate_kernel` is a compiled bar loop shared by every strategy and by every fast
sweep path, so the execution rules below exist exactly once.

Execution model (all sizes "all-in": the whole equity is committed, compounding)
------------------------------------------------------------------------------
Signals are evaluated at the close of bar ``i`` and acted on at the open of bar ``i + 1``:

1. *Open of bar i* - a pending exit is filled at the open (reason ``"signal"``); then a
   pending entry is filled at the open (market order).
2. *Inside bar i* - stop and target are live from the entry bar itself.  A long stop is hit
   when ``low <= stop`` and filled at the stop, or at the open if the open is already
   through it (gap); targets likewise with ``high >= target``.  Shorts are mirrored.  If both
   levels lie inside one bar the stop is assumed to come first (conservative).
3. *Close of bar i* - equity is marked to market at the close (before exit costs; on a bar
   where a trade closed and no position is open it is the realised equity).  Then the
   bar's signals are read: flat + entry signal -> pending entry; in a position + exit signal
   -> pending exit; in a position + entry signal for the opposite side -> pending exit and
   pending reversal entry; anything else is ignored (no pyramiding).  A position stopped out
   during bar ``i`` is flat at its close, so an entry signal on that same close is accepted.
4. *Last bar* - an open position is marked to market at the last close like on any other
   bar and is NOT closed: no slippage, no exit commission, not counted as a trade.  It is
   reported apart (the kernel's slot after the closed trades; ``BacktestResult.open_trade``,
   reason ``"end"``, the last close as its mark price, its ``pnl_pct`` from the marked
   equity), and the last bar's equity includes its mark.  Signals on the last close are
   ignored (nothing follows to act on them).

Costs: slippage (fraction ``slip``) worsens every fill including stop and target fills
(buys at ``p * (1 + slip)``, sells at ``p * (1 - slip)``).  Commission (fraction ``comm``) is
charged on traded value at entry and exit.  With equity ``E`` before entry the position
notional is ``N = E / (1 + comm)`` so notional plus entry commission equals ``E``; the
equity after a long round trip is ``E / (1 + comm) * exit / entry * (1 - comm)``.
A trade's ``pnl_pct`` is ``(equity after exit / equity before entry - 1) * 100``, so the
product of ``1 + pnl_pct / 100`` over all closed trades and the position open at the end (its
marked equity over the equity before entry) equals ``final / initial`` equity.

Stops and targets come per signal bar, either as fractional distances from the entry FILL
(mode ``LEVEL_FRACTION``: long stop ``fill * (1 - d)``, target ``fill * (1 + d)``) or as
absolute prices (mode ``LEVEL_PRICE``); NaN means "no level".  A level array of length 1 is
broadcast to every bar.  An unhedged position whose equity would fall to 0 inside a bar is
closed out at the price where that happens (``entry_fill - side * base / qty``: twice the
entry fill for an all-in short, 0 for a long without cash flows), or at the open if the bar
opens beyond it, as a ``"stop"`` exit worth 0; the lower (short) / higher (long) of that
price and the stop is hit first.  So an account is never marked below 0 and cannot recover
from it.  Once equity is 0 no further entries are taken.

Limit entries (optional ``entry_limit``, one price per signal bar; NaN = market order): an
entry signal on the close of bar ``i`` with a limit ``L`` is a limit order valid during bar
``i + 1`` only.  A long fills at the open if ``open <= L`` (gap through the limit: the better
price), else at ``L`` if ``low <= L``; a short mirrors this with ``open >= L`` / ``high >= L``.
Unfilled, the order is cancelled (the strategy re-arms it on a later close if it wants).
Slippage still worsens the fill.  On a bar filled at ``L`` (not at the open) only the stop is
checked - the bar's high may have come before the fill, so a target there is not trusted; a
fill at the open behaves like a market entry.  A limit signal is only taken when flat at the
close: it never reverses an open position.  Without ``entry_limit`` nothing above changes.

Cash flows and hedged positions (optional ``flow`` and ``hedged``; used by funding carry and
the options selector): ``flow[i]`` is cash per unit of position quantity credited at the close
of bar ``i`` (after stops and targets, before the mark) to a
position open at that close, as ``side * qty * flow[i]`` - e.g. funding received by a short
perpetual.  ``hedged=True`` adds an equal and opposite second leg on the same price (long spot
+ short perpetual): it fills at the same open with slippage in its own direction, pays
commission on its own traded value at entry and exit, and its price moves cancel the first
leg's, so the mark is ``base + side * qty * (hedge_fill - entry_fill)`` plus the flows.
Sizing stays all-in: ``qty = E / (entry_fill + comm * (entry_fill + hedge_fill))``, so both
legs' entry commissions plus the first leg's notional equal ``E``.  Without ``flow`` and
``hedged`` nothing above changes (the unhedged code path is the same arithmetic).

Position size (optional ``size``, per signal bar): an entry commits ``size * E`` of the equity
``E`` (0 < size <= 1) with the all-in rules above and keeps the rest as cash, which is added to
every mark and to the exit's proceeds.  The close-out at zero applies to the position's own
equity.  ``size = 1`` (or no ``size``) is exactly the all-in model.

Partial exits (:func:`simulate_parts`): K targets make K equal sub-positions (1/K of the
initial equity each) with the same entries and stop and target k each; they are reported as
one trade per group position (see that function).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .backtest_result import BacktestResult, Trades
from .data import MarketData
from .timeframes import bars_per_year

REASONS: tuple[str, ...] = ("signal", "stop", "target", "end")
REASON_SIGNAL, REASON_STOP, REASON_TARGET, REASON_END = range(4)
LEVEL_FRACTION = 0
LEVEL_PRICE = 1


@njit(cache=True, error_model="numpy", inline="always")  # pragma: no mutate
def _exit_equity(base, qty, side, entry_fill, exit_fill, comm):
    eq = base + side * qty * (exit_fill - entry_fill) - comm * qty * exit_fill
    return eq if eq > 0.0 else 0.0  # pragma: no mutate: Gt_GtE


@njit(cache=True, error_model="numpy", inline="always")  # pragma: no mutate
def _close_cash(base, qty, side, entry_fill, fill, comm, hedged, hedge_fill, mid, slip):
    """Equity after closing at ``fill`` (mid price ``mid``).  A hedged position also buys
    back its opposite leg at ``mid`` worsened by slippage and pays commission on it; an
    unhedged one is exactly :func:`_exit_equity`."""
    if not hedged:
        return _exit_equity(base, qty, side, entry_fill, fill, comm)
    hedge_exit = mid * (1.0 + side * slip)
    eq = (
        base
        + side * qty * (fill - entry_fill)
        - side * qty * (hedge_exit - hedge_fill)
        - comm * qty * (fill + hedge_exit)
    )
    return eq if eq > 0.0 else 0.0  # pragma: no mutate: Gt_GtE


@njit(cache=True, error_model="numpy", inline="always")  # pragma: no mutate
def _record_trade(
    count, entry_i, exit_i, entry_fill, exit_fill, side, cash, eq_before, reason,
    t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
):  # fmt: skip
    """Write trade ``count`` to the buffers; returns the new trade count."""
    t_entry_idx[count] = entry_i
    t_exit_idx[count] = exit_i
    t_entry_px[count] = entry_fill
    t_exit_px[count] = exit_fill
    t_side[count] = side
    t_pnl[count] = (cash / eq_before - 1.0) * 100.0
    t_reason[count] = reason
    return count + 1


@njit(cache=True, error_model="numpy")  # pragma: no mutate
def simulate_kernel(
    open_,
    high,
    low,
    close,
    entry_side,
    exit_flag,
    stop_level,
    stop_mode,
    target_level,
    target_mode,
    comm,
    slip,
    initial_equity,
    equity_out,
    in_pos_out,
    t_entry_idx,
    t_exit_idx,
    t_entry_px,
    t_exit_px,
    t_side,
    t_pnl,
    t_reason,
    entry_limit=None,
    flow=None,
    hedged=False,
    delay=0,
    size=None,
    compact=None,
):
    """Run one backtest; returns the number of closed trades written to the ``t_*`` buffers.

    A position open at the end is written to slot ``count`` (the returned number) without
    being counted; flat at the end, that slot holds ``t_entry_idx = -1`` and ``t_reason = -1``
    instead, so what the buffers held before is never read as an open position.

    Parameters
    ----------
    open_, high, low, close : ndarray[float64] (n,)
    entry_side : ndarray[int8] (n,)
        +1 / -1 = enter long / short at the next open, 0 = nothing (close of bar i).
    exit_flag : ndarray[bool] (n,)
        Exit the open position at the next open.
    stop_level, target_level : ndarray[float64] (n,) or (1,)
        Levels attached to an entry signal on that bar (see module docstring); NaN = none.
    stop_mode, target_mode : int
        ``LEVEL_FRACTION`` or ``LEVEL_PRICE``.
    comm, slip : float
        Commission and slippage as fractions (0.001 = 0.1 %).
    initial_equity : float
        Quote currency.
    equity_out : ndarray[float64] (n,), in_pos_out : ndarray[bool] (n,)
        Outputs per bar.
    t_* : ndarray (>= max(n, 1),)
        Trade outputs.  Every position (closed or open at the end) enters at a different
        open after bar 0, so there are at most ``n - 1`` and slot ``count`` always exists.
    entry_limit : ndarray[float64] (n,), optional
        Limit price per entry-signal bar (NaN = market); see "Limit entries" above.
    flow : ndarray[float64] (n,), optional
        Cash per unit of quantity credited at the close of bar ``i`` to a position open at
        that close (``side * qty * flow[i]``); see "Cash flows and hedged positions".
    hedged : bool
        Hold an equal and opposite second leg (delta-neutral); see the same section.
    delay : int
        Signal delay in bars (stress test): at the close of bar ``i`` the kernel reads the
        signals, levels and limits of bar ``i - delay`` (none before the first bar), so an
        order reaches the market ``delay`` bars late.  Prices, stops, targets and flows are
        not delayed.  ``0`` (the default) is the execution model above, unchanged.
    size : ndarray[float64] (n,) or (1,), optional
        Fraction of equity in (0, 1] committed by an entry signalled on that bar (see
        "Position size"); ``None`` = 1, all-in.
    compact : ndarray[int64] (1,), optional
        Sweep mode: bars that are flat, with nothing pending and no signal (their equity is
        the previous bar's and no position is held) are left out of ``equity_out`` and
        ``in_pos_out``, which then hold the other bars in order from index 0 (bar 0 always);
        their count is written to ``compact[0]``.  The metrics of such a compact curve are
        exactly those of the full one (see :func:`~backtestlab.engine.metrics.curve_fold`).
    """
    n = open_.shape[0]
    ns = stop_level.shape[0]
    nt = target_level.shape[0]
    cash = initial_equity
    side = 0
    qty = 0.0  # pragma: no mutate
    base = 0.0  # pragma: no mutate
    entry_fill = 0.0  # pragma: no mutate
    hedge_fill = 0.0  # pragma: no mutate
    stop = np.nan
    target = np.nan
    eq_before = 0.0  # pragma: no mutate
    entry_i = 0  # pragma: no mutate
    pend_side = 0
    pend_stop = np.nan
    pend_target = np.nan
    pend_limit = np.nan
    pend_exit = False  # pragma: no mutate
    pend_size = 1.0
    rest = 0.0  # cash kept outside the position (size < 1)  # pragma: no mutate
    wipe = np.nan
    nz = 1 if size is None else size.shape[0]
    count = 0
    w = 0  # compact mode: bars written
    i = -1
    while i < n - 1:  # pragma: no mutate: Lt_NotEq
        i += 1
        if side == 0 and pend_side == 0 and not pend_exit:
            # Flat with nothing pending: nothing can happen until an entry signal that will
            # fill (a limit order the next bar does not reach is cancelled unfilled) or the
            # last bar, so those bars are only marked at the cash.
            while i < n - 1:  # pragma: no mutate: Lt_NotEq
                si = i - delay
                if si >= 0 and entry_side[si] != 0:
                    if entry_limit is None:
                        break
                    lim = entry_limit[si]
                    if not lim == lim:  # pragma: no mutate: Eq_LtE, Eq_GtE
                        break  # a market order
                    if entry_side[si] == 1:  # pragma: no mutate: Eq_GtE
                        if open_[i + 1] <= lim or low[i + 1] <= lim:
                            break
                    elif open_[i + 1] >= lim or high[i + 1] >= lim:
                        break
                if compact is None:
                    equity_out[i] = cash
                    in_pos_out[i] = False
                elif i == 0:  # pragma: no mutate: Eq_LtE
                    equity_out[0] = cash
                    in_pos_out[0] = False
                    w = 1
                i += 1
        elif side != 0 and pend_side == 0 and not pend_exit and flow is None and not hedged:  # noqa: E501  # pragma: no mutate: Comparison, Number
            # Holding with nothing pending: until a stop or target is touched, a signal
            # arrives or the last bar, a bar is only marked (the same arithmetic as below).
            stp = wipe if not side * (wipe - stop) <= 0.0 else stop  # noqa: E501  # pragma: no mutate: LtE_Lt, Mul_Div
            while i < n - 1:  # pragma: no mutate: Lt_NotEq
                if side == 1:  # pragma: no mutate: Eq_GtE
                    if low[i] <= stp or high[i] >= target:
                        break
                elif high[i] >= stp or low[i] <= target:
                    break
                si = i - delay
                if si >= 0:  # pragma: no mutate: GtE_Gt, GtE_NotEq, NumberReplacer
                    if exit_flag[si]:
                        break
                    s = entry_side[si]
                    if s != 0 and s != side:  # a reversal, unless it is a limit order  # noqa: E501  # pragma: no mutate: AndWithOr
                        if entry_limit is None:
                            break
                        if not entry_limit[si] == entry_limit[si]:  # noqa: E501  # pragma: no mutate: Eq_Lt, Eq_Gt
                            break
                eq = base + side * qty * (close[i] - entry_fill)
                if eq < 0.0:  # pragma: no mutate: Lt_LtE
                    eq = 0.0
                eq = rest + eq
                if compact is None:
                    equity_out[i] = eq
                    in_pos_out[i] = True
                else:
                    equity_out[w] = eq
                    in_pos_out[w] = True
                    w += 1
                i += 1
        o = open_[i]
        held = False
        if pend_exit and side != 0:
            fill = o * (1.0 - side * slip)
            cash = rest + _close_cash(
                base, qty, side, entry_fill, fill, comm, hedged, hedge_fill, o, slip
            )
            count = _record_trade(
                count, entry_i, i, entry_fill, fill, side, cash, eq_before, REASON_SIGNAL,
                t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
            )  # fmt: skip
            side = 0
        pend_exit = False
        limit_fill = False
        fill_px = o
        if pend_side != 0 and side == 0 and pend_limit == pend_limit:  # a limit order  # noqa: E501  # pragma: no mutate: Operator_Eq_LtE, Operator_Eq_GtE, AndWithOr
            if pend_side == 1 and o > pend_limit:  # pragma: no mutate: Eq_GtE, Gt_GtE
                fill_px = pend_limit if low[i] <= pend_limit else np.nan
            elif pend_side == -1 and o < pend_limit:  # pragma: no mutate: Eq_LtE, Lt_LtE
                fill_px = pend_limit if high[i] >= pend_limit else np.nan
            limit_fill = fill_px == pend_limit and fill_px != o  # noqa: E501  # pragma: no mutate: Operator_Eq_LtE, Operator_Eq_GtE
        if pend_side != 0 and side == 0 and cash > 0.0 and fill_px == fill_px:  # noqa: E501  # pragma: no mutate: Operator_Eq_LtE, Operator_Eq_GtE, Gt_NotEq
            side = pend_side
            entry_fill = fill_px * (1.0 + side * slip)
            eq_before = cash
            alloc = cash * pend_size
            rest = cash - alloc
            base = alloc / (1.0 + comm)
            qty = base / entry_fill
            if hedged:
                hedge_fill = fill_px * (1.0 - side * slip)
                qty = alloc / (entry_fill + comm * (entry_fill + hedge_fill))
                base = alloc - comm * qty * (entry_fill + hedge_fill)
            # The price at which the position's own equity is gone (see the module docstring).
            wipe = entry_fill - side * base / qty
            entry_i = i
            if stop_mode == LEVEL_FRACTION:  # pragma: no mutate: Eq_LtE
                stop = entry_fill * (1.0 - side * pend_stop)
            else:
                stop = pend_stop
            if target_mode == LEVEL_FRACTION:  # pragma: no mutate: Eq_LtE
                target = entry_fill * (1.0 + side * pend_target)
            else:
                target = pend_target
        pend_side = 0

        if side != 0:
            held = True
            h = high[i]
            lo = low[i]
            reason = -1
            px = 0.0  # pragma: no mutate
            # The high/low that would hit a target may precede a limit fill inside the bar.
            tgt = np.nan if limit_fill else target
            stp = stop
            if not hedged:
                # The equity is all gone at this price (a short at twice its entry fill): the
                # position is closed out there like a stop, so it cannot come back from below 0.
                if not side * (wipe - stop) <= 0.0:  # pragma: no mutate: LtE_Lt, Mul_Div
                    stp = wipe
            # NaN levels compare False, so "no stop"/"no target" needs no extra branch.
            if side == 1:  # pragma: no mutate: Eq_GtE
                if lo <= stp:
                    reason = REASON_STOP
                    px = o if o <= stp else stp  # pragma: no mutate: LtE_Lt
                elif h >= tgt:
                    reason = REASON_TARGET
                    px = o if o >= tgt else tgt  # pragma: no mutate: GtE_Gt
            else:
                if h >= stp:
                    reason = REASON_STOP
                    px = o if o >= stp else stp  # pragma: no mutate: GtE_Gt
                elif lo <= tgt:
                    reason = REASON_TARGET
                    px = o if o <= tgt else tgt  # pragma: no mutate: LtE_Lt
            if reason >= 0:  # pragma: no mutate: GtE_Gt
                fill = px * (1.0 - side * slip)
                cash = rest + _close_cash(
                    base, qty, side, entry_fill, fill, comm, hedged, hedge_fill, px, slip
                )
                count = _record_trade(
                    count, entry_i, i, entry_fill, fill, side, cash, eq_before, reason,
                    t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
                )  # fmt: skip
                side = 0

        if flow is not None:
            if side != 0:
                base += side * qty * flow[i]
                wipe = entry_fill - side * base / qty
        c = close[i]
        if side != 0:
            # Hedged: the legs' price moves cancel; the spread of the two fills remains.
            eq = base + side * qty * ((hedge_fill if hedged else c) - entry_fill)
            if eq < 0.0:  # a flow after the close-out check (unhedged: closed at the next open)  # noqa: E501  # pragma: no mutate: Lt_LtE
                eq = 0.0
            eq = rest + eq
            si = i - delay
            if i == n - 1:  # pragma: no mutate: Eq_GtE
                # Open at the end: marked like any bar, not closed; written to slot ``count``
                # without counting it (no exit costs, the close as its mark price).
                _record_trade(
                    count, entry_i, i, entry_fill, c, side, eq, eq_before, REASON_END,
                    t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
                )  # fmt: skip
            elif si >= 0:  # pragma: no mutate: GtE_Gt, GtE_NotEq, NumberReplacer
                if exit_flag[si]:
                    pend_exit = True
                s = entry_side[si]
                if entry_limit is not None:
                    if entry_limit[si] == entry_limit[si]:  # pragma: no mutate: Eq_LtE, Eq_GtE
                        s = 0  # limit signals never reverse a position
                if s != 0 and s != side:
                    pend_exit = True
                    pend_side = s
                    pend_stop = stop_level[si if ns > 1 else 0]  # pragma: no mutate: Gt_NotEq
                    pend_target = target_level[si if nt > 1 else 0]  # pragma: no mutate: Gt_NotEq
                    pend_limit = np.nan
                    if size is not None:
                        pend_size = size[si if nz > 1 else 0]  # pragma: no mutate: Gt_NotEq
        else:
            eq = cash
            si = i - delay
            s = entry_side[si] if si >= 0 else 0
            if s != 0:  # (on the last close nothing follows to act on it)
                pend_side = s
                pend_stop = stop_level[si if ns > 1 else 0]  # pragma: no mutate: Gt_NotEq
                pend_target = target_level[si if nt > 1 else 0]  # pragma: no mutate: Gt_NotEq
                pend_limit = np.nan
                if entry_limit is not None:
                    pend_limit = entry_limit[si]
                if size is not None:
                    pend_size = size[si if nz > 1 else 0]  # pragma: no mutate: Gt_NotEq
        if compact is None:
            equity_out[i] = eq
            in_pos_out[i] = held
        else:
            equity_out[w] = eq
            in_pos_out[w] = held
            w += 1
    if side == 0:
        # Flat at the end: the open-position slot says so, whatever the buffers held before.
        t_entry_idx[count] = -1
        t_reason[count] = -1
    if compact is not None:
        compact[0] = w
    return count


@njit(cache=True)  # pragma: no mutate
def parts_work(max_parts, n):
    """Scratch arrays for :func:`simulate_parts` with up to ``max_parts`` targets on ``n``
    bars (allocated once per sweep, not once per backtest)."""
    last = max(max_parts - 1, 1)
    m = max(n, 1)
    return (
        np.empty(n),  # the last part's equity
        np.empty((last, n)),  # the other parts' equity
        np.empty(n, dtype=np.bool_),  # their in-position flags (unused)
        np.empty(n, dtype=np.int8),  # the group's entries
        np.empty((last, m), dtype=np.int64),  # entry bars
        np.empty((last, m), dtype=np.int64),  # exit bars
        np.empty((last, m)),  # exit prices
        np.empty((last, m)),  # pnl
        np.empty(m),  # entry prices (unused)
        np.empty(m, dtype=np.int8),  # sides (unused)
        np.empty(m, dtype=np.int8),  # reasons (unused)
    )


@njit(cache=True, error_model="numpy")  # pragma: no mutate
def simulate_parts(
    open_, high, low, close, entry_side, exit_flag, stop_level, stop_mode, targets, n_parts,
    target_mode, comm, slip, initial_equity, equity_out, in_pos_out,
    t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason, work,
    entry_limit=None, flow=None, hedged=False, delay=0, size=None,
):  # fmt: skip
    """:func:`simulate_kernel` with ``n_parts`` targets ``targets[0 .. n_parts-1]`` (each a
    level array like ``target_level``); returns the number of closed (group) trades, the
    group's position open at the end in the slot after them as :func:`simulate_kernel` does.

    One part is exactly :func:`simulate_kernel`.  With K > 1 parts the account is split into K
    equal sub-accounts with the same stop and target k each.  The last part (furthest target,
    exits last) is simulated first on the entry signals; the others are simulated on the
    entries that part took (its position open at the end too), so all parts always enter
    together.  Equity is the sum of the parts; each group position is one trade: its entry,
    the last part's exit bar and reason,
    the equity-weighted exit price and the pnl of the whole group.  Each part compounds on its
    own (a part that took its target keeps the profit for the next entry), which is the one
    way this differs from one account re-split at every entry; it is exact for partial exits
    at fixed levels.
    """
    if n_parts == 1:  # pragma: no mutate: Eq_LtE
        return simulate_kernel(
            open_, high, low, close, entry_side, exit_flag, stop_level, stop_mode, targets[0],
            target_mode, comm, slip, initial_equity, equity_out, in_pos_out,
            t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
            entry_limit, flow, hedged, delay, size,
        )  # fmt: skip
    n = open_.shape[0]
    last = n_parts - 1
    part = initial_equity / n_parts
    eq_last, eqs, scratch_pos, group_side, e_idx, x_idx, x_px, pnl, e_px, sd, rs = work
    c_last = simulate_kernel(
        open_, high, low, close, entry_side, exit_flag, stop_level, stop_mode, targets[last],
        target_mode, comm, slip, part, eq_last, in_pos_out,
        t_entry_idx, t_exit_idx, t_entry_px, t_exit_px, t_side, t_pnl, t_reason,
        entry_limit, flow, hedged, delay, size,
    )  # fmt: skip
    # The last part's position still open at the end (slot ``c_last``) is a group entry too.
    held_last = 1 if t_entry_idx[c_last] >= 0 else 0  # pragma: no mutate: GtE_Gt
    group_side[:] = 0
    for k in range(c_last + held_last):
        j = t_entry_idx[k] - 1 - delay  # the signal bar of this entry
        group_side[j] = t_side[k]
    # A part's trades to merge: its closed ones and its position open at the end, if any.
    counts = np.empty(last, dtype=np.int64)
    for t in range(last):
        c = simulate_kernel(
            open_, high, low, close, group_side, exit_flag, stop_level, stop_mode, targets[t],
            target_mode, comm, slip, part, eqs[t], scratch_pos,
            e_idx[t], x_idx[t], e_px, x_px[t], sd, pnl[t], rs,
            entry_limit, flow, hedged, delay, size,
        )  # fmt: skip
        counts[t] = c + (1 if e_idx[t, c] >= 0 else 0)  # pragma: no mutate: GtE_Gt
    for i in range(n):
        e = eqs[0, i]
        for t in range(1, last):
            e += eqs[t, i]
        equity_out[i] = e + eq_last[i]
    # Merge the parts into one trade per group position (written over the last part's
    # buffers, which are read before being overwritten at the same index); the group's
    # position open at the end (slot ``c_last``) likewise, from the parts' open positions.
    # A part still open when the last part has closed is merged into that closed group trade
    # at its mark, so the group's pnl still compounds to the final equity.
    s_part = np.full(last, part)
    ptr = np.zeros(last, dtype=np.int64)
    s_last = part
    for k in range(c_last + held_last):
        e = t_entry_idx[k]
        before = s_last
        s_last = s_last * (1.0 + t_pnl[k] / 100.0)
        after = s_last
        wx = before * t_exit_px[k]
        w = before
        for t in range(last):
            # A part with zero equity skips an entry (shorts only); match parts by entry bar.
            while ptr[t] < counts[t] and e_idx[t, ptr[t]] < e:
                s_part[t] = s_part[t] * (1.0 + pnl[t, ptr[t]] / 100.0)  # pragma: no mutate
                ptr[t] += 1  # pragma: no mutate
            if ptr[t] < counts[t] and e_idx[t, ptr[t]] == e:  # pragma: no mutate: Lt_NotEq, Eq_LtE
                before += s_part[t]
                wx += s_part[t] * x_px[t, ptr[t]]
                w += s_part[t]
                s_part[t] = s_part[t] * (1.0 + pnl[t, ptr[t]] / 100.0)
                after += s_part[t]
                ptr[t] += 1
            else:
                before += s_part[t]
                after += s_part[t]
        t_exit_px[k] = wx / w if w > 0.0 else t_exit_px[k]  # pragma: no mutate: Gt_GtE, Gt_NotEq
        t_pnl[k] = (after / before - 1.0) * 100.0 if before > 0.0 else 0.0  # noqa: E501  # pragma: no mutate: Gt_GtE, Gt_NotEq
    return c_last


@njit(cache=True)
def allocate_trade_buffers(n):
    """Trade buffers for :func:`simulate_kernel` sized for ``n`` bars (Python or compiled).

    Returns (entry_idx, exit_idx, entry_px, exit_px, side, pnl_pct, reason).
    """
    m = max(n, 1)
    return (
        np.empty(m, dtype=np.int64),
        np.empty(m, dtype=np.int64),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.int8),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.int8),
    )


def _levels(pct, price, n: int, what: str) -> tuple[np.ndarray, int]:
    if pct is not None and price is not None:
        raise ValueError(f"give either {what}_pct or {what}_price, not both")
    if price is not None:
        arr = np.ascontiguousarray(
            np.broadcast_to(price, (n,)) if np.ndim(price) == 0 else price, dtype=np.float64
        )
        mode = LEVEL_PRICE
    elif pct is not None:
        arr = np.atleast_1d(np.asarray(pct, dtype=np.float64)) / 100.0
        mode = LEVEL_FRACTION
    else:
        arr = np.full(1, np.nan)
        mode = LEVEL_FRACTION
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] not in (1, n):
        raise ValueError(f"{what} levels must be a scalar or have one value per bar ({n})")
    return arr, mode


def simulate(
    data: MarketData,
    entries: np.ndarray,
    exits: np.ndarray | None = None,
    *,
    costs,
    side: int = 1,
    stop_pct: float | np.ndarray | None = None,
    target_pct: float | np.ndarray | None = None,
    stop_price: np.ndarray | None = None,
    target_price: np.ndarray | None = None,
    entry_limit: np.ndarray | None = None,
    size: float | np.ndarray | None = None,
) -> BacktestResult:
    """Simulate one strategy run on ``data`` (see the module docstring for the rules).

    Parameters
    ----------
    data : MarketData
    entries : ndarray (n,)
        Boolean (enter on ``side``) or int8 (+1 long, -1 short, 0 none), read at each close.
    exits : ndarray[bool] (n,), optional
        Exit at the next open.
    costs : Costs
        Commission/slippage in percent and the initial equity.
    side : {1, -1}
        Side used for boolean ``entries``.
    stop_pct, target_pct : float or ndarray, optional
        Distance from the entry fill in percent (scalar or per signal bar).
    stop_price, target_price : ndarray, optional
        Absolute levels per signal bar (NaN = none); exclusive with the ``*_pct`` form.
    entry_limit : ndarray (n,), optional
        Limit price per entry-signal bar (NaN = market order); see "Limit entries".
    size : float or ndarray (n,), optional
        Fraction of equity in (0, 1] an entry commits (per signal bar); see "Position size".
    """
    n = len(data)
    entries = np.asarray(entries)
    if entries.shape != (n,):
        raise ValueError(f"entries must have shape ({n},), got {entries.shape}")
    if entries.dtype == np.bool_:  # pragma: no mutate: Eq_LtE
        if side not in (1, -1):
            raise ValueError("side must be 1 (long) or -1 (short)")
        entry_side = entries.astype(np.int8) * np.int8(side)  # pragma: no mutate: Mul_Div
    else:
        entry_side = np.ascontiguousarray(entries, dtype=np.int8)
    if exits is None:
        exit_flag = np.zeros(n, dtype=np.bool_)
    else:
        exit_flag = np.ascontiguousarray(exits, dtype=np.bool_)
        if exit_flag.shape != (n,):
            raise ValueError(f"exits must have shape ({n},), got {exit_flag.shape}")
    stop_arr, stop_mode = _levels(stop_pct, stop_price, n, "stop")
    target_arr, target_mode = _levels(target_pct, target_price, n, "target")
    if entry_limit is not None:
        entry_limit = np.ascontiguousarray(entry_limit, dtype=np.float64)
        if entry_limit.shape != (n,):
            raise ValueError(f"entry_limit must have shape ({n},), got {entry_limit.shape}")
    size_arr = None
    if size is not None:
        size_arr = np.ascontiguousarray(np.atleast_1d(np.asarray(size, dtype=np.float64)))
        if size_arr.ndim != 1 or size_arr.shape[0] not in (1, n):
            raise ValueError(f"size must be a number or have one value per bar ({n})")
        if not ((size_arr > 0.0) & (size_arr <= 1.0)).all():  # pragma: no mutate: BitAnd_Mul
            raise ValueError("size must be a fraction of equity in (0, 1]")
    comm, slip = cost_fractions(costs)
    return run_kernel(
        data,
        entry_side,
        exit_flag,
        stop_arr,
        stop_mode,
        target_arr,
        target_mode,
        comm,
        slip,
        float(costs.initial_equity),
        entry_limit=entry_limit,
        delay=getattr(costs, "signal_delay_bars", 0),
        size=size_arr,
    )


def cost_fractions(costs) -> tuple[float, float]:
    """Commission and slippage fractions from a :class:`Costs` given in percent."""
    return float(costs.commission_pct) / 100.0, float(costs.slippage_pct) / 100.0


def run_kernel(
    data,
    entry_side,
    exit_flag,
    stop_arr,
    stop_mode,
    target_arr,
    target_mode,
    comm,
    slip,
    initial_equity,
    entry_limit=None,
    flow=None,
    hedged=False,
    delay=0,
    size=None,
) -> BacktestResult:
    """Call :func:`simulate_kernel` on prepared arrays and wrap the result (``delay``: the
    signal delay in bars, see :func:`simulate_kernel`; strategies pass
    ``costs.signal_delay_bars``)."""
    n = len(data)
    equity = np.empty(n, dtype=np.float64)
    in_pos = np.empty(n, dtype=np.bool_)
    bufs = allocate_trade_buffers(n)
    count = simulate_kernel(
        data.open,
        data.high,
        data.low,
        data.close,
        entry_side,
        exit_flag,
        stop_arr,
        stop_mode,
        target_arr,
        target_mode,
        comm,
        slip,
        initial_equity,
        equity,
        in_pos,
        *bufs,
        entry_limit,
        flow,
        hedged,
        int(delay),
        size,
    )
    return result_from_buffers(data, equity, in_pos, bufs, count, initial_equity)


def result_from_buffers(
    data, equity: np.ndarray, in_pos: np.ndarray, bufs: tuple, count: int, initial_equity: float
) -> BacktestResult:
    """Wrap a kernel's outputs as a BacktestResult: the first ``count`` trades of ``bufs``
    (closed) and the position open at the end in slot ``count`` (none if flat)."""
    held = int(bufs[0][count] >= 0)
    return BacktestResult(
        ts=data.ts,
        equity=equity,
        trades=_trades(data, bufs, 0, count),
        bars_per_year=bars_per_year(data.timeframe),
        initial_equity=float(initial_equity),
        in_position=in_pos,
        open_trade=_trades(data, bufs, count, count + held),
    )


def _trades(data, bufs: tuple, lo: int, hi: int) -> Trades:
    e_idx, x_idx, e_px, x_px, t_side, pnl, reason = (b[lo:hi].copy() for b in bufs)
    return Trades(
        entry_idx=e_idx,
        exit_idx=x_idx,
        entry_ts=data.ts[e_idx],
        exit_ts=data.ts[x_idx],
        entry_price=e_px,
        exit_price=x_px,
        side=t_side,
        pnl_pct=pnl,
        reason=np.array(REASONS)[reason],
    )
