"""Overfitting figures of a sweep: PBO by CSCV and the deflated Sharpe ratio.

Both need per-period returns of every configuration, which sweeps do not store (runs keep
only metrics).  :func:`returns_matrix` recomputes them with the engine: each configuration's
equity curve via ``strategy.run`` on the same prepared context, per-bar simple returns
``eq[i] / eq[i-1] - 1`` (the metrics module's ``r``), one column per configuration.

Probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu, 2017)
-------------------------------------------------------------------------------
Combinatorially symmetric cross-validation on the ``(T x N)`` matrix: the rows are cut into
``S`` (even) equal blocks (the first ``T mod S`` rows are dropped); for every choice of
``S / 2`` blocks as in-sample (IS) and the rest as out-of-sample (OOS), the configuration with
the best IS Sharpe ratio is ranked among all configurations by OOS Sharpe; with relative
rank ``w = rank / (N + 1)`` the logit is ``ln(w / (1 - w))``.  PBO is the share of
combinations with logit <= 0, i.e. where the IS winner is at or below the OOS median.
Block sums make each combination a matrix product, so C(16, 8) = 12,870 combinations of
1,000 configurations take well under a second.

Deflated Sharpe ratio (Bailey & López de Prado, 2014)
-----------------------------------------------------
With per-period Sharpe ratio ``SR`` of the best run over ``T`` returns, their skewness
``g3`` and (non-excess) kurtosis ``g4``, ``N`` trials whose per-period Sharpe ratios have
variance ``V``, and Euler-Mascheroni ``g``:

    ``SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))``
    ``DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2))``

``DSR`` is the probability that the best run's true Sharpe ratio is positive after
accounting for having picked it among ``N`` trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
from numba import njit

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def equity_returns(equity: np.ndarray) -> np.ndarray:
    eq = np.asarray(equity, dtype=np.float64)
    prev = eq[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev > 0, eq[1:] / prev - 1.0, 0.0)
    return r


def period_index(n_bars: int, max_periods: int) -> np.ndarray:
    """Bar indexes at which equity is sampled: every bar, or evenly spaced so that there are
    at most ``max_periods`` returns (long minute-bar data would not fit in memory otherwise)."""
    if n_bars - 1 <= max_periods:
        return np.arange(n_bars)
    return np.unique(np.round(np.linspace(0, n_bars - 1, max_periods + 1)).astype(np.int64))


DEFAULT_MAX_PERIODS = 4000


def returns_matrix(
    strategy, ctx, param_list, costs, *, max_periods: int = DEFAULT_MAX_PERIODS
) -> tuple[np.ndarray, float]:
    """``(T, N)`` per-period returns of each configuration (recomputed with ``strategy.run``)
    and the mean number of bars per period: a period is one bar, or several consecutive bars
    when there are more than ``max_periods``."""
    cols = []
    idx = None
    for p in param_list:
        eq = strategy.run(ctx, p, costs).equity
        if idx is None:
            idx = period_index(len(eq), max_periods)
        cols.append(equity_returns(eq[idx]))
    if not cols:
        return np.zeros((0, 0)), 1.0
    bars_per_period = (idx[-1] - idx[0]) / max(len(idx) - 1, 1)
    return np.ascontiguousarray(np.column_stack(cols)), float(bars_per_period)


@dataclass(frozen=True)
class PBOResult:
    pbo: float
    n_combinations: int
    n_blocks: int
    n_configs: int
    n_periods: int
    logit_median: float
    oos_loss_share: float  # share of combinations where the IS winner has OOS Sharpe < 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@njit(cache=True, error_model="numpy")
def _cscv_kernel(s, ss, combos, half, logits, chosen_oos):
    """For each IS block combination: the IS-best configuration's OOS rank logit."""
    nb, n = s.shape
    nc, k = combos.shape
    is_s = np.empty(n)
    is_ss = np.empty(n)
    tot_s = s.sum(axis=0)
    tot_ss = ss.sum(axis=0)
    oos = np.empty(n)
    for c in range(nc):
        is_s[:] = 0.0
        is_ss[:] = 0.0
        for j in range(k):
            b = combos[c, j]
            for q in range(n):
                is_s[q] += s[b, q]
                is_ss[q] += ss[b, q]
        best = -1
        best_sr = -np.inf
        for q in range(n):
            sr = _sr(is_s[q], is_ss[q], half)
            if sr == sr and sr > best_sr:
                best_sr = sr
                best = q
        for q in range(n):
            sr = _sr(tot_s[q] - is_s[q], tot_ss[q] - is_ss[q], half)
            oos[q] = sr if sr == sr else -np.inf
        if best < 0:
            best = 0
        ch = oos[best]
        below = 0
        ties = -1
        for q in range(n):
            if oos[q] < ch:
                below += 1
            elif oos[q] == ch:
                ties += 1
        rank = below + 0.5 * ties + 1.0  # 1 = worst .. N = best; ties share the middle
        w = rank / (n + 1.0)
        logits[c] = np.log(w / (1.0 - w))
        chosen_oos[c] = ch


@njit(cache=True, error_model="numpy", inline="always")
def _sr(s, ss, n):
    var = (ss - s * s / n) / (n - 1)
    if var <= 1e-28:
        return np.nan
    return s / n / np.sqrt(var)


def probability_of_backtest_overfitting(returns: np.ndarray, *, n_blocks: int = 16) -> PBOResult:
    """PBO of a ``(T, N)`` returns matrix by CSCV with ``n_blocks`` blocks (see module)."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("PBO needs a (T, N) matrix with at least two configurations")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be an even number >= 2, got {n_blocks}")
    t, n = m.shape
    size = t // n_blocks
    if size < 2:
        raise ValueError(f"PBO needs at least {2 * n_blocks} periods, got {t}")
    m = m[t - size * n_blocks :].reshape(n_blocks, size, n)
    s = np.ascontiguousarray(m.sum(axis=1))  # (S, N)
    ss = np.ascontiguousarray((m * m).sum(axis=1))
    combos = np.array(list(combinations(range(n_blocks), n_blocks // 2)), dtype=np.int64)
    logits = np.empty(len(combos))
    chosen = np.empty(len(combos))
    _cscv_kernel(s, ss, combos, float(size * n_blocks // 2), logits, chosen)
    return PBOResult(
        pbo=float((logits <= 0).mean()),
        n_combinations=len(combos),
        n_blocks=n_blocks,
        n_configs=n,
        n_periods=t,
        logit_median=float(np.median(logits)),
        oos_loss_share=float((chosen < 0).mean()),
    )


@dataclass(frozen=True)
class DeflatedSharpe:
    dsr: float
    sharpe: float  # per period
    sharpe_annualised: float
    expected_max_sharpe: float  # SR0, per period
    n_trials: int
    n_periods: int
    skew: float
    kurtosis: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def deflated_sharpe_ratio(
    returns: np.ndarray,
    trial_sharpes: np.ndarray,
    *,
    periods_per_year: float = 1.0,
    n_trials: int | None = None,
) -> DeflatedSharpe:
    """DSR of ``returns`` (the chosen run) given the per-period Sharpe ratios of the trials.

    ``n_trials`` is how many configurations the best was picked from (e.g. every one ever
    evaluated on this data, the trial ledger); the Sharpe ratios given estimate their spread.
    Without it, the number of Sharpe ratios given."""
    r = np.asarray(returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    trials = trials[np.isfinite(trials)]
    t = r.size
    n_trials = int(trials.size) if n_trials is None else max(int(n_trials), int(trials.size))
    nan = math.nan
    sd = r.std(ddof=1) if t > 1 else 0.0
    if t < 3 or sd <= 1e-14 or n_trials < 1:
        return DeflatedSharpe(nan, nan, nan, nan, n_trials, t, nan, nan)
    sr = float(r.mean() / sd)
    z = (r - r.mean()) / r.std(ddof=0)
    g3 = float((z**3).mean())
    g4 = float((z**4).mean())
    v = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    if n_trials > 1:
        sr0 = math.sqrt(v) * (
            (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials)
            + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n_trials * math.e))
        )
    else:
        sr0 = 0.0
    denom = 1 - g3 * sr + (g4 - 1) / 4 * sr * sr
    dsr = _N.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom)) if denom > 0 else nan
    return DeflatedSharpe(
        dsr=dsr,
        sharpe=sr,
        sharpe_annualised=sr * math.sqrt(periods_per_year),
        expected_max_sharpe=sr0,
        n_trials=n_trials,
        n_periods=t,
        skew=g3,
        kurtosis=g4,
    )


def per_period_sharpes(returns: np.ndarray) -> np.ndarray:
    m = np.asarray(returns, dtype=np.float64)
    sd = m.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 1e-14, m.mean(axis=0) / sd, np.nan)


def overfitting_report(returns: np.ndarray, best_column: int, *, periods_per_year: float,
                       n_blocks: int = 16, n_trials: int | None = None) -> dict:  # fmt: skip
    """PBO and DSR of a sweep's returns matrix with the chosen (best) configuration
    (``n_trials``: see :func:`deflated_sharpe_ratio`)."""
    out: dict = {"n_configs": int(returns.shape[1]), "n_periods": int(returns.shape[0])}
    try:
        out["pbo"] = probability_of_backtest_overfitting(returns, n_blocks=n_blocks).as_dict()
    except ValueError as exc:
        out["pbo"] = None
        out["pbo_error"] = str(exc)
    dsr = deflated_sharpe_ratio(
        returns[:, best_column], per_period_sharpes(returns), periods_per_year=periods_per_year,
        n_trials=n_trials,
    )  # fmt: skip
    out["deflated_sharpe"] = dsr.as_dict()
    return out
