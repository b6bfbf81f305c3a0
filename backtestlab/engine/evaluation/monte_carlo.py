"""Monte Carlo variance of a trade sequence (seed 002 ``run_monte_carlo``, seed 003 CIs).

Each simulation is a path of ``trades_per_sim`` trade returns (fractions of equity) drawn
from the backtest's trades, compounded from equity 1:

* ``bootstrap`` - drawn with replacement (any length);
* ``shuffle`` - a random permutation, truncated to ``trades_per_sim`` (<= the number of
  trades; the final return of a full-length shuffle equals the backtest's).

Per path: final return ``equity - 1``, max drawdown ``min(equity / peak - 1)`` (<= 0, the
peak starts at 1) and the longest run of losing trades (``r < 0``; zero breaks a run) - the
seed's ``_simulate_equity``.  Summaries use linear-interpolation percentiles (the seed's
``_percentile`` = numpy's default) and the seed's rounding of the median streak.

Determinism and blocks
----------------------
Simulations are generated in blocks of :data:`BLOCK` paths; block ``b`` draws from its own
``np.random.Generator(PCG64(SeedSequence(seed, spawn_key=(b,))))``.  The same seed gives the
same numbers however the work is split (a Monte Carlo job runs blocks in separate chunks),
and path ``j`` is the same path whatever ``sims`` is, so more simulations never narrow the
worst case.  The whole computation is vectorised: draws are numpy, the path walk is one
compiled loop (10,000 x 1,000 in well under a second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit

from .trades import NoTradesError, pnl_fractions

BLOCK = 1000
MODES = ("bootstrap", "shuffle")
BAND_PERCENTILES = (5, 25, 50, 75, 95)
MAX_CHECKPOINTS = 101


@dataclass(frozen=True)
class VarianceProfile:
    sims: int
    trades_per_sim: int
    median_final_return: float
    worst_final_return: float
    best_final_return: float
    median_max_dd: float
    worst_max_dd: float
    median_max_loss_streak: int
    worst_max_loss_streak: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MonteCarloResult:
    """Profile, confidence intervals, per-path outcomes and equity percentile bands.

    ``steps`` are trade counts (0 .. trades_per_sim) at which ``bands[p]`` gives the p-th
    percentile of equity (start = 1) across paths.
    """

    profile: VarianceProfile
    mode: str
    seed: int | None
    confidence_level: float
    intervals: dict
    final_returns: np.ndarray
    max_drawdowns: np.ndarray
    loss_streaks: np.ndarray
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bands: dict = field(default_factory=dict)


@njit(cache=True, error_model="numpy")
def _walk(paths, checkpoints, final_out, dd_out, streak_out, eq_at):
    """Compound each row of ``paths``; outcomes per row and equity at ``checkpoints``."""
    sims, steps = paths.shape
    nc = checkpoints.shape[0]
    for s in range(sims):
        eq = 1.0
        peak = 1.0
        mdd = 0.0
        cur = 0
        best = 0
        c = 0
        while c < nc and checkpoints[c] == 0:
            eq_at[s, c] = 1.0
            c += 1
        for t in range(steps):
            r = paths[s, t]
            eq *= 1.0 + r
            if eq > peak:
                peak = eq
            dd = (eq - peak) / peak
            if dd < mdd:
                mdd = dd
            if r < 0.0:
                cur += 1
                if cur > best:
                    best = cur
            else:
                cur = 0
            while c < nc and checkpoints[c] == t + 1:
                eq_at[s, c] = eq
                c += 1
        final_out[s] = eq - 1.0
        dd_out[s] = mdd
        streak_out[s] = best


def _check(returns, sims: int, trades_per_sim: int | None, mode: str) -> tuple[np.ndarray, int]:
    r = np.ascontiguousarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise NoTradesError()
    if not np.all(np.isfinite(r)) or np.any(r < -1.0):
        raise ValueError("trade returns must be finite fractions of equity >= -1")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(sims, bool) or int(sims) != sims or sims < 1:
        raise ValueError(f"sims must be a positive integer, got {sims!r}")
    tps = r.size if trades_per_sim in (None, 0) else int(trades_per_sim)
    if tps < 1:
        raise ValueError(f"trades_per_sim must be a positive integer, got {trades_per_sim!r}")
    if mode == "shuffle" and tps > r.size:
        raise ValueError(
            f"shuffle draws without replacement: trades_per_sim must be at most the number "
            f"of trades ({r.size}), got {tps}; use bootstrap for longer paths"
        )
    return r, tps


def checkpoints_for(trades_per_sim: int) -> np.ndarray:
    """Trade counts at which the equity bands are sampled (<= 101 points, 0 and the end)."""
    k = min(trades_per_sim + 1, MAX_CHECKPOINTS)
    return np.unique(np.round(np.linspace(0, trades_per_sim, k)).astype(np.int64))


def block_generator(seed: int | None, block: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def simulate_block(
    returns: np.ndarray, *, block: int, size: int, trades_per_sim: int, mode: str,
    seed: int | None, checkpoints: np.ndarray,
):  # fmt: skip
    """Paths ``block * BLOCK .. block * BLOCK + size`` (``size`` <= BLOCK): outcomes and the
    equity at ``checkpoints``.  Row ``j`` is the same path for any ``size`` > ``j``."""
    rng = block_generator(seed, block)
    n = returns.size
    if mode == "bootstrap":
        paths = returns[rng.integers(0, n, size=(size, trades_per_sim))]
    else:
        # Independent permutations row by row (Generator.permuted draws rows in order).
        idx = rng.permuted(np.broadcast_to(np.arange(n), (size, n)), axis=1)
        paths = returns[idx[:, :trades_per_sim]]
    paths = np.ascontiguousarray(paths)
    final = np.empty(size)
    dd = np.empty(size)
    streak = np.empty(size, dtype=np.int64)
    eq_at = np.empty((size, checkpoints.shape[0]))
    _walk(paths, checkpoints, final, dd, streak, eq_at)
    return final, dd, streak, eq_at


def block_ranges(sims: int, start: int = 0, stop: int | None = None):
    """``(block, first path, size)`` covering paths ``start .. stop`` (block-aligned)."""
    stop = sims if stop is None else min(stop, sims)
    for lo in range(start, stop, BLOCK):
        yield lo // BLOCK, lo, min(BLOCK, stop - lo)


def simulate_paths(
    returns, *, sims: int, trades_per_sim: int | None = None, mode: str = "bootstrap",
    seed: int | None = None, start: int = 0, stop: int | None = None,
):  # fmt: skip
    """Outcomes (final returns, max drawdowns, loss streaks) and checkpoint equity of paths
    ``start .. stop`` (default all ``sims``); ``start`` must be a multiple of BLOCK."""
    r, tps = _check(returns, sims, trades_per_sim, mode)
    if start % BLOCK:
        raise ValueError(f"start must be a multiple of {BLOCK}")
    cps = checkpoints_for(tps)
    parts = [
        simulate_block(
            r, block=b, size=size, trades_per_sim=tps, mode=mode, seed=seed, checkpoints=cps
        )
        for b, _lo, size in block_ranges(sims, start, stop)
    ]
    if not parts:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros((0, cps.size)), cps
    final, dd, streak, eq_at = (np.concatenate([p[j] for p in parts]) for j in range(4))
    return final, dd, streak, eq_at, cps


def _pct(a: np.ndarray, p: float) -> float:
    return float(np.percentile(a, p))


def summarize(
    final_returns, max_drawdowns, loss_streaks, *, trades_per_sim: int,
    confidence_level: float = 0.95,
) -> tuple[VarianceProfile, dict]:  # fmt: skip
    """The seed's VarianceProfile and two-sided confidence intervals of the outcomes."""
    f = np.asarray(final_returns, dtype=np.float64)
    d = np.asarray(max_drawdowns, dtype=np.float64)
    s = np.asarray(loss_streaks, dtype=np.float64)
    if f.size == 0:
        raise ValueError("no simulations to summarize")
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
    profile = VarianceProfile(
        sims=int(f.size),
        trades_per_sim=int(trades_per_sim),
        median_final_return=_pct(f, 50),
        worst_final_return=float(f.min()),
        best_final_return=float(f.max()),
        median_max_dd=_pct(d, 50),
        worst_max_dd=float(d.min()),
        median_max_loss_streak=int(round(_pct(s, 50))),
        worst_max_loss_streak=int(s.max()),
    )
    lo = (1 - confidence_level) / 2 * 100
    hi = 100 - lo
    intervals = {
        name: {"low": _pct(a, lo), "high": _pct(a, hi), "mean": float(a.mean())}
        for name, a in (("final_return", f), ("max_drawdown", d), ("max_loss_streak", s))
    }
    return profile, intervals


def equity_bands(eq_at: np.ndarray) -> dict[int, list[float]]:
    """Percentiles (5/25/50/75/95) of equity across paths at each checkpoint."""
    q = np.percentile(eq_at, BAND_PERCENTILES, axis=0)
    return {p: q[k].tolist() for k, p in enumerate(BAND_PERCENTILES)}


def histogram(values, bins: int = 30) -> dict:
    """Counts over equal-width bins (edges has bins + 1 values)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"edges": [], "counts": []}
    lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def run_monte_carlo(
    returns: Sequence[float] | np.ndarray,
    sims: int = 1000,
    trades_per_sim: int | None = None,
    bootstrap: bool = True,
    seed: int | None = None,
    confidence_level: float = 0.95,
) -> MonteCarloResult:
    """The seed's ``run_monte_carlo`` on trade returns (fractions), vectorised and seeded.

    ``returns`` may also be a list of :class:`~.trades.TradeResult`.
    """
    if len(returns) and hasattr(returns[0], "pnl_frac"):
        returns = pnl_fractions(returns)
    mode = "bootstrap" if bootstrap else "shuffle"
    final, dd, streak, eq_at, cps = simulate_paths(
        returns, sims=sims, trades_per_sim=trades_per_sim, mode=mode, seed=seed
    )
    tps = int(cps[-1])
    profile, intervals = summarize(
        final, dd, streak, trades_per_sim=tps, confidence_level=confidence_level
    )
    return MonteCarloResult(
        profile=profile,
        mode=mode,
        seed=seed,
        confidence_level=confidence_level,
        intervals=intervals,
        final_returns=final,
        max_drawdowns=dd,
        loss_streaks=streak,
        steps=cps,
        bands=equity_bands(eq_at),
    )
