"""The ONE definition of backtest metrics.

The compiled kernel :func:`metrics_kernel` is the definition; :func:`compute` and every fast
sweep path call it, so a metric can never mean two different things.

Definitions (``eq`` is the per-bar equity curve marked to market at each close, ``E0`` the
initial equity, ``r[i] = eq[i] / eq[i-1] - 1`` for ``i >= 1`` the per-bar simple returns
(0 after a wipe-out, when ``eq[i-1] <= 0``: nothing is left to gain or lose),
``bpy`` bars per year, trade ``pnl`` in percent of equity at entry):

=====================  =========================================================================
total_return_pct       ``(eq[-1] / E0 - 1) * 100``
cagr_pct               ``((eq[-1] / E0) ** (1 / years) - 1) * 100``, ``years = (ts[-1] - ts[0] +
                       bar_seconds) / (365.25 * 86400)``; -100 if equity is wiped out
sharpe                 ``mean(r) / std(r, ddof=1) * sqrt(bpy)`` (risk-free 0); NaN if < 2
                       returns or zero std (below 1e-14, i.e. float noise on a flat curve)
sortino                ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(bpy)``; ``+inf`` when no
                       return is negative and the mean is positive, NaN when nothing moved
max_drawdown_pct       ``min(eq / cummax(eq) - 1) * 100`` (<= 0; 0 when equity never falls)
calmar                 ``cagr_pct / |max_drawdown_pct|``; ``+inf`` when there is no drawdown
                       over two bars or more and the CAGR is positive, NaN when there is no
                       drawdown otherwise
win_rate               percent (0..100) of trades with ``pnl > 0``; NaN without trades
profit_factor          ``sum(pnl > 0) / |sum(pnl < 0)|``; ``+inf`` when there are winning trades
                       and no losing one, NaN when there is neither
expectancy_pct         ``mean(pnl)``; NaN without trades
avg_win_pct            mean pnl of winning trades (> 0); NaN when none
avg_loss_pct           mean pnl of losing trades (< 0, so the value is <= 0); NaN when none
n_trades               number of closed trades (stored as float, always integral)
max_consec_wins        longest run of trades with pnl > 0 (a pnl of exactly 0 breaks runs)
max_consec_losses      longest run of trades with pnl < 0
avg_trade_duration_h   mean ``(ts[exit_idx] - ts[entry_idx]) / 3600``; NaN without trades
exposure_pct           percent of bars during which a position was held
=====================  =========================================================================

Degenerate inputs (no bars, one bar, no trades, flat equity) produce NaN or 0 as listed,
never an exception or a floating-point warning.  Results are finite or NaN except the three
ratios above, which are ``+inf`` exactly when their denominator is 0 and their numerator
positive (finance's value: nothing lost, so the ratio is unbounded; it ranks above every
finite value).  A finite ratio too large for a float is NaN, never ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields

import numpy as np
from numba import njit

from .backtest_result import BacktestResult
from .timeframes import HOURS_PER_YEAR

_SECONDS_PER_YEAR_CAGR = 365.25 * 86400.0

METRIC_NAMES: tuple[str, ...] = (
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "win_rate",
    "profit_factor",
    "expectancy_pct",
    "avg_win_pct",
    "avg_loss_pct",
    "n_trades",
    "max_consec_wins",
    "max_consec_losses",
    "avg_trade_duration_h",
    "exposure_pct",
)
N_METRICS = len(METRIC_NAMES)
(
    M_TOTAL_RETURN,
    M_CAGR,
    M_SHARPE,
    M_SORTINO,
    M_CALMAR,
    M_MAX_DD,
    M_WIN_RATE,
    M_PROFIT_FACTOR,
    M_EXPECTANCY,
    M_AVG_WIN,
    M_AVG_LOSS,
    M_N_TRADES,
    M_CONSEC_WINS,
    M_CONSEC_LOSSES,
    M_DURATION,
    M_EXPOSURE,
) = range(N_METRICS)


@dataclass(frozen=True)
class MetricInfo:
    """Presentation and optimisation facts about one metric.

    ``higher_is_better`` holds for every metric here once signs are taken into account
    (drawdown and average loss are <= 0, so closer to 0 is higher).  ``objective`` says
    whether ranking by it is meaningful.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool
    objective: bool


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("total_return_pct", "Total return", "%", True, True),
        MetricInfo("cagr_pct", "CAGR", "%", True, True),
        MetricInfo("sharpe", "Sharpe ratio", "", True, True),
        MetricInfo("sortino", "Sortino ratio", "", True, True),
        MetricInfo("calmar", "Calmar ratio", "", True, True),
        MetricInfo("max_drawdown_pct", "Max drawdown", "%", True, True),
        MetricInfo("win_rate", "Win rate", "%", True, True),
        MetricInfo("profit_factor", "Profit factor", "", True, True),
        MetricInfo("expectancy_pct", "Expectancy per trade", "%", True, True),
        MetricInfo("avg_win_pct", "Average win", "%", True, False),
        MetricInfo("avg_loss_pct", "Average loss", "%", True, False),
        MetricInfo("n_trades", "Trades", "", True, False),
        MetricInfo("max_consec_wins", "Max consecutive wins", "", True, False),
        MetricInfo("max_consec_losses", "Max consecutive losses", "", False, False),
        MetricInfo("avg_trade_duration_h", "Average trade duration", "h", False, False),
        MetricInfo("exposure_pct", "Exposure", "%", False, False),
    )
}
assert tuple(METRICS) == METRIC_NAMES


@njit(cache=True, error_model="numpy")
def _finite_or_nan(x):
    if math.isfinite(x):
        return x
    return np.nan


@njit(cache=True, error_model="numpy")
def curve_fold(equity, in_pos, m, moved):
    """One pass over the first ``m`` bars of an equity curve: ``(mdd, held, s, dsq,
    n_moved)`` - the worst drawdown (fraction, <= 0), bars held, the sum of the per-bar
    returns, the sum of the squared negative ones, and the count of returns that are not 0
    (written to ``moved``, for the variance).

    The ONE per-bar definition of the curve metrics.  Divisions are the cost here, so they
    are skipped where the result is known exactly: a bar whose equity equals the previous one
    has r = 0 (``x / x == 1``; the sum is never -0.0, so adding 0 changes nothing), and a
    drawdown is only computed at a new low since the peak (``e / peak`` grows with ``e``).
    So a flat bar with no position changes nothing at all, and a sweep may leave such bars
    out of the curve it folds (:func:`simulate_kernel`'s ``compact`` mode) and get the same
    numbers.
    """
    peak = equity[0]
    trough = peak
    mdd = 0.0
    held = 0
    s = 0.0
    dsq = 0.0
    n_moved = 0
    prev = peak
    for i in range(m):
        e = equity[i]
        if e > peak:
            peak = e
            trough = e
        elif e < trough:
            trough = e
            if peak > 0.0:
                dd = e / peak - 1.0
                if dd < mdd:
                    mdd = dd
        if in_pos[i]:
            held += 1
        if e != prev and prev > 0.0:
            r = e / prev - 1.0
            s += r
            moved[n_moved] = r
            n_moved += 1
            if r < 0.0:
                dsq += r * r
        prev = e
    return mdd, held, s, dsq, n_moved


@njit(cache=True, error_model="numpy")
def curve_metrics(ts, n, last, mdd, held, s, dsq, moved, n_moved, bpy, initial_equity, out):
    """The equity-curve metrics of ``n`` bars from the state :func:`curve_step` left
    (``last``: the final equity)."""
    if n > 0 and initial_equity > 0.0:
        out[M_TOTAL_RETURN] = _finite_or_nan((last / initial_equity - 1.0) * 100.0)
        bar_seconds = HOURS_PER_YEAR * 3600.0 / bpy
        years = (ts[n - 1] - ts[0] + bar_seconds) / _SECONDS_PER_YEAR_CAGR
        if last <= 0.0:
            out[M_CAGR] = -100.0
        elif years > 0.0:
            out[M_CAGR] = _finite_or_nan(((last / initial_equity) ** (1.0 / years) - 1.0) * 100.0)
        out[M_MAX_DD] = mdd * 100.0
        out[M_EXPOSURE] = 100.0 * held / n
        nr = n - 1
        if nr >= 1:
            mean = s / nr
            down = math.sqrt(dsq / nr)
            if down > 0.0:
                out[M_SORTINO] = _finite_or_nan(mean / down * math.sqrt(bpy))
            elif mean > 0.0:
                out[M_SORTINO] = np.inf
            if nr >= 2:
                # Sum of squared deviations: the moved returns one by one, then the bars
                # whose return is exactly 0 at once (the same terms, fewer roundings).
                v = 0.0
                for j in range(n_moved):
                    d = moved[j] - mean
                    v += d * d
                v += (nr - n_moved) * (mean * mean)
                sd = math.sqrt(v / (nr - 1))
                # Float noise on a flat curve leaves a std of ~1e-19; treat it as zero.
                if sd > 1e-14:
                    out[M_SHARPE] = _finite_or_nan(mean / sd * math.sqrt(bpy))
        if mdd < 0.0 and not math.isnan(out[M_CAGR]):
            out[M_CALMAR] = _finite_or_nan(out[M_CAGR] / (-mdd * 100.0))
        elif mdd == 0.0 and n > 1 and out[M_CAGR] > 0.0:
            out[M_CALMAR] = np.inf


@njit(cache=True, error_model="numpy")
def trade_metrics(ts, entry_idx, exit_idx, pnl_pct, n_trades, out):
    """The trade metrics of the first ``n_trades`` trades."""
    out[M_N_TRADES] = n_trades
    if n_trades > 0:
        wins = 0
        losses = 0
        gw = 0.0
        gl = 0.0
        tot = 0.0
        dur = 0.0
        cw = 0
        cl = 0
        bw = 0
        bl = 0
        for k in range(n_trades):
            p = pnl_pct[k]
            tot += p
            dur += (ts[exit_idx[k]] - ts[entry_idx[k]]) / 3600.0
            if p > 0.0:
                wins += 1
                gw += p
                cw += 1
                cl = 0
            elif p < 0.0:
                losses += 1
                gl += p
                cl += 1
                cw = 0
            else:
                cw = 0
                cl = 0
            if cw > bw:
                bw = cw
            if cl > bl:
                bl = cl
        out[M_WIN_RATE] = 100.0 * wins / n_trades
        out[M_EXPECTANCY] = tot / n_trades
        out[M_DURATION] = dur / n_trades
        if wins > 0:
            out[M_AVG_WIN] = gw / wins
        if losses > 0:
            out[M_AVG_LOSS] = gl / losses
            out[M_PROFIT_FACTOR] = gw / (-gl)
        elif wins > 0:
            out[M_PROFIT_FACTOR] = np.inf
        out[M_CONSEC_WINS] = bw
        out[M_CONSEC_LOSSES] = bl
    else:
        out[M_CONSEC_WINS] = 0.0
        out[M_CONSEC_LOSSES] = 0.0


@njit(cache=True, error_model="numpy")
def curve_and_trade_metrics(
    ts, equity, in_pos, m, n, entry_idx, exit_idx, pnl_pct, n_trades, bpy, initial_equity, out
):  # fmt: skip
    """:func:`metrics_kernel` of a curve of ``n`` bars given by its first ``m`` entries
    (``m < n`` only for a compact curve without its flat, position-free bars)."""
    for k in range(out.shape[0]):
        out[k] = np.nan
    if n > 0:
        moved = np.empty(m)
        mdd, held, s, dsq, n_moved = curve_fold(equity, in_pos, m, moved)
        curve_metrics(
            ts, n, equity[m - 1], mdd, held, s, dsq, moved, n_moved, bpy, initial_equity, out
        )
    trade_metrics(ts, entry_idx, exit_idx, pnl_pct, n_trades, out)


@njit(cache=True, error_model="numpy")
def metrics_kernel(
    ts, equity, in_pos, entry_idx, exit_idx, pnl_pct, n_trades, bpy, initial_equity, out
):
    """Fill ``out[0:N_METRICS]`` (order = ``METRIC_NAMES``) for one backtest.

    Only the first ``n_trades`` entries of the trade arrays are read, so callers may pass
    reusable oversize buffers.  See the module docstring for the formulas.
    """
    n = equity.shape[0]
    curve_and_trade_metrics(
        ts, equity, in_pos, n, n, entry_idx, exit_idx, pnl_pct, n_trades, bpy, initial_equity,
        out,
    )  # fmt: skip


@dataclass(frozen=True)
class Metrics:
    """Metrics of one backtest; fields in ``METRIC_NAMES`` order, all ``float`` (counts such
    as ``n_trades`` are integral floats so a row is a homogeneous float64 vector)."""

    total_return_pct: float
    cagr_pct: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown_pct: float
    win_rate: float
    profit_factor: float
    expectancy_pct: float
    avg_win_pct: float
    avg_loss_pct: float
    n_trades: float
    max_consec_wins: float
    max_consec_losses: float
    avg_trade_duration_h: float
    exposure_pct: float

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_row(self) -> np.ndarray:
        return np.array(astuple(self), dtype=np.float64)

    @classmethod
    def from_row(cls, row: np.ndarray) -> Metrics:
        row = np.asarray(row, dtype=np.float64)
        if row.shape != (N_METRICS,):
            raise ValueError(f"expected {N_METRICS} metric values, got shape {row.shape}")
        return cls(*(float(v) for v in row))


assert tuple(f.name for f in fields(Metrics)) == METRIC_NAMES


def compute_row(result: BacktestResult) -> np.ndarray:
    """Metrics of a backtest as a float64 vector in ``METRIC_NAMES`` order."""
    out = np.empty(N_METRICS, dtype=np.float64)
    t = result.trades
    metrics_kernel(
        result.ts,
        result.equity,
        result.in_position,
        t.entry_idx,
        t.exit_idx,
        t.pnl_pct,
        len(t),
        float(result.bars_per_year),
        float(result.initial_equity),
        out,
    )
    return out


def compute(result: BacktestResult) -> Metrics:
    """Metrics of one backtest (calls the compiled :func:`metrics_kernel`)."""
    return Metrics.from_row(compute_row(result))
