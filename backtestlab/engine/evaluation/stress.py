"""Stress test of one run: fees x2, slippage x2, signals one bar late, and all three.

Each scenario is the same strategy, data and parameters with modified
:class:`~backtestlab.engine.strategies.base.Costs`: ``commission_pct * 2``,
``slippage_pct * 2`` or ``signal_delay_bars = 1``.  The delay is strategy-agnostic: every
strategy's ``run`` passes ``costs.signal_delay_bars`` to the ONE simulator kernel, which then
reads the signals (entries, exits, their stop/target levels and limit prices) of bar
``i - 1`` at the close of bar ``i``: every order reaches the market one bar late, while fills,
stops, targets and cash flows use the real bars.  With a delay of 0 the kernel is unchanged
(the golden tests pin it bit for bit).

The verdict compares the objective of each scenario with the base: it passes when the base
objective is positive and every single scenario keeps at least ``min_fraction`` of it and the
combined scenario at least ``min_fraction_combined``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..metrics import METRIC_NAMES, compute_row

SCENARIOS: tuple[tuple[str, str], ...] = (
    ("base", "As tested"),
    ("fees_x2", "Commission x2"),
    ("slippage_x2", "Slippage x2"),
    ("delay_1", "Signals delayed one bar"),
    ("all", "All three"),
)


def scenario_costs(costs, name: str):
    if name == "base":
        return costs
    if name == "fees_x2":
        return replace(costs, commission_pct=costs.commission_pct * 2)
    if name == "slippage_x2":
        return replace(costs, slippage_pct=costs.slippage_pct * 2)
    if name == "delay_1":
        return replace(costs, signal_delay_bars=costs.signal_delay_bars + 1)
    if name == "all":
        return replace(
            costs,
            commission_pct=costs.commission_pct * 2,
            slippage_pct=costs.slippage_pct * 2,
            signal_delay_bars=costs.signal_delay_bars + 1,
        )
    raise ValueError(f"unknown stress scenario {name!r}")


@dataclass(frozen=True)
class StressResult:
    objective: str
    rows: tuple[dict, ...]  # per scenario: name, label, objective value, ratio, metrics

    @property
    def base_value(self) -> float:
        return self.rows[0]["value"]

    def passed(self, *, min_fraction: float, min_fraction_combined: float) -> bool:
        base = self.base_value
        if not (math.isfinite(base) and base > 0):
            return False
        for row in self.rows[1:]:
            need = min_fraction_combined if row["name"] == "all" else min_fraction
            if not (math.isfinite(row["value"]) and row["value"] >= need * base):
                return False
        return True

    def as_dict(self) -> dict:
        return {"objective": self.objective, "scenarios": list(self.rows)}


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def stress_test(strategy, ctx, params: dict, costs, *, objective: str = "sharpe") -> StressResult:
    """Run the five scenarios through ``strategy.run`` and the one metrics definition."""
    k = METRIC_NAMES.index(objective)
    rows = []
    base = math.nan
    for name, label in SCENARIOS:
        row = compute_row(strategy.run(ctx, params, scenario_costs(costs, name)))
        value = float(row[k])
        if name == "base":
            base = value
        ratio = value / base if math.isfinite(value) and math.isfinite(base) and base else math.nan
        rows.append(
            {
                "name": name,
                "label": label,
                "value": value,
                "ratio": ratio,
                "metrics": {n: _clean(v) for n, v in zip(METRIC_NAMES, row, strict=True)},
            }
        )
    return StressResult(objective=objective, rows=tuple(rows))
