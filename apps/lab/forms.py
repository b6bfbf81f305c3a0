"""The launch form: its parameter fields come from the chosen strategy's parameter space."""

from __future__ import annotations

import re

from apps.market.models import Dataset
from apps.optimization.ranking import DEFAULT_MIN_TRADES
from apps.optimization.services.validation import DESCRIPTION_MAX_LENGTH
from backtestlab.engine.metrics import METRICS
from backtestlab.engine.strategies import STRATEGIES, get_strategy
from backtestlab.errors import ApplicationError
from backtestlab.inputs import whole_number

RANGE_RE = re.compile(r"^\s*([^:]+):([^:]+):([^:]+)\s*$")


def _scalar(text: str):
    text = text.strip()
    low = text.lower()
    if low in {"true", "yes", "on"}:
        return True
    if low in {"false", "no", "off"}:
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_values(name: str, text: str):
    """'5, 10, 20' -> [5, 10, 20]; '5:50:5' -> a range {start, stop, step} (stop inclusive)."""
    text = (text or "").strip()
    if not text:
        raise ApplicationError(
            f"{name}: give at least one value, e.g. 10 or 5, 10, 20 or 5:50:5", field=name
        )
    match = RANGE_RE.match(text)
    if match:
        start, stop, step = (_scalar(g) for g in match.groups())
        return {"start": start, "stop": stop, "step": step}
    return [_scalar(part) for part in text.split(",") if part.strip()]


def format_default(param) -> str:
    if param.kind == "bool":
        return "true" if param.default else "false"
    return str(param.default)


def objective_choices() -> list[tuple[str, str]]:
    return [(name, info.label) for name, info in METRICS.items() if info.objective]


def format_values(values) -> str:
    """A preset's value list as the form writes it: ``[True, 2.5]`` -> ``"true, 2.5"``."""
    return ", ".join(("true" if v else "false") if isinstance(v, bool) else str(v) for v in values)


def launch_context(strategy_key: str | None, data=None, preset: str | None = None) -> dict:
    """Everything the launch form needs to render, for a strategy (default: the first one).

    ``preset`` names one of the strategy's ``presets`` grids; its values fill the fields."""
    key = strategy_key if strategy_key in STRATEGIES else next(iter(STRATEGIES))
    strategy = get_strategy(key)
    data = data or {}
    presets = getattr(strategy, "presets", {})
    chosen = presets.get(preset, {})
    params = []
    for p in strategy.parameter_space().params:
        default = format_values(chosen[p.name]) if p.name in chosen else format_default(p)
        params.append(
            {
                "param": p,
                "field": f"p_{p.name}",
                "value": data.get(f"p_{p.name}", default),
                "hint": (
                    f"{p.low:g} … {p.high:g}"
                    if p.low is not None and p.high is not None
                    else ", ".join(map(str, p.choices))
                ),
            }
        )
    return {
        "strategies": list(STRATEGIES.values()),
        "strategy": strategy,
        "params": params,
        "presets": presets,
        "datasets": Dataset.objects.filter(kind=strategy.data_kind).order_by(
            "symbol", "timeframe", "name"
        ),
        "objectives": objective_choices(),
        "default_min_trades": DEFAULT_MIN_TRADES,
        "description_max_length": DESCRIPTION_MAX_LENGTH,
        "data": data,
        "selected_datasets": {whole_number(x) for x in data.getlist("datasets")} - {None}
        if hasattr(data, "getlist")
        else set(),
    }


def job_kwargs_from_post(post) -> dict:
    """Turn the launch form's POST into job_create keyword arguments (or raise field errors)."""
    key = post.get("strategy", "")
    strategy = get_strategy(key) if key in STRATEGIES else None
    if strategy is None:
        raise ApplicationError(f"unknown strategy {key!r}", field="strategy")
    grid = {}
    for p in strategy.parameter_space().params:
        grid[p.name] = parse_values(p.name, post.get(f"p_{p.name}", ""))
    dataset_ids = []
    for raw in post.getlist("datasets"):
        dataset_id = whole_number(raw)
        if dataset_id is None:
            raise ApplicationError(
                f"dataset {raw!r} is not an id; pick datasets from the list", field="datasets"
            )
        dataset_ids.append(dataset_id)
    if not dataset_ids:
        raise ApplicationError("pick at least one dataset", field="datasets")
    costs = {}
    for name in ("commission_pct", "slippage_pct"):
        raw = post.get(name, "").strip()
        if raw:
            try:
                costs[name] = float(raw)
            except ValueError:
                raise ApplicationError(
                    f"{name} must be a number, got {raw!r}", field=name
                ) from None
    raw = post.get("min_trades", "").strip()
    min_trades = whole_number(raw) if raw else DEFAULT_MIN_TRADES
    if min_trades is None:
        raise ApplicationError(
            f"min_trades must be a whole number of trades, got {raw!r}", field="min_trades"
        )
    return {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "strategy": key,
        "min_trades": min_trades,
        "dataset_ids": dataset_ids,
        "parameter_grid": grid,
        "objective": post.get("objective", "sharpe"),
        "date_from": post.get("date_from") or None,
        "date_to": post.get("date_to") or None,
        "costs": costs,
    }
