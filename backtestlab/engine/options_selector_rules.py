"""The options selector ("Greg's selector"): rules on the daily environment metrics.

One definition, used by the Selector Frequency Scan, the Selector Heatmap (how often would
the selector allow a trade?) and the options-selector strategy (open a short-volatility
position when it allows one). A rule compares one environment metric with one threshold; the
selector allows a decision step when every rule holds. A threshold of ``None`` disables its
rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .parameters import Param, ParameterError, did_you_mean


@dataclass(frozen=True)
class SelectorRule:
    param: str  # threshold name, e.g. "min_vrp_30d"
    metric: str  # environment metric key, e.g. "vrp_30d"
    op: Literal["min", "max"]  # "min": metric >= threshold; "max": metric <= threshold
    default: float
    low: float
    high: float
    label: str

    def as_param(self) -> Param:
        word = "at least" if self.op == "min" else "at most"
        return Param(
            self.param,
            "float",
            self.default,
            self.low,
            self.high,
            label=self.label,
            help=f"trade only when {self.metric} is {word} this value",
        )


SELECTOR_RULES: tuple[SelectorRule, ...] = (
    SelectorRule("min_vrp_30d", "vrp_30d", "min", 5.0, -50.0, 100.0, "Min VRP 30d"),
    SelectorRule("min_iv_rank_6m", "iv_rank_6m", "min", 30.0, 0.0, 100.0, "Min IV Rank 6m"),
    SelectorRule("max_adx_14d", "adx_14d", "max", 25.0, 0.0, 100.0, "Max ADX 14d"),
    SelectorRule("min_rsi_14d", "rsi_14d", "min", 30.0, 0.0, 100.0, "Min RSI 14d"),
    SelectorRule("max_rsi_14d", "rsi_14d", "max", 70.0, 0.0, 100.0, "Max RSI 14d"),
)
RULES_BY_PARAM: dict[str, SelectorRule] = {r.param: r for r in SELECTOR_RULES}


def selector_defaults() -> dict[str, float]:
    return {r.param: r.default for r in SELECTOR_RULES}


def validate_thresholds(thresholds: Mapping[str, float | None]) -> dict[str, float | None]:
    """Known threshold names only (did-you-mean), finite values within bounds; defaults fill in."""
    known = [r.param for r in SELECTOR_RULES]
    out: dict[str, float | None] = selector_defaults()
    for name, value in thresholds.items():
        if name not in RULES_BY_PARAM:
            raise ParameterError(name, did_you_mean("threshold", name, known))
        out[name] = None if value is None else RULES_BY_PARAM[name].as_param().coerce(value)
    return out


def selector_allows(
    metrics: Mapping[str, np.ndarray], thresholds: Mapping[str, float | None]
) -> np.ndarray:
    """Boolean array: on which steps every enabled rule holds (NaN metrics never pass)."""
    n = len(next(iter(metrics.values())))
    allowed = np.ones(n, dtype=bool)
    for rule in SELECTOR_RULES:
        threshold = thresholds.get(rule.param, rule.default)
        if threshold is None:
            continue
        values = metrics[rule.metric]
        with np.errstate(invalid="ignore"):
            allowed &= values >= threshold if rule.op == "min" else values <= threshold
    return allowed
