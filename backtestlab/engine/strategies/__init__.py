"""The strategy registry: every strategy instance by its key.

The five built-ins register here.  A team adds its own without touching this package: dotted
paths in a setting (``BACKTESTLAB_STRATEGIES``, loaded by the lab at start-up through
:func:`load_strategies`) or the ``backtestlab.strategies`` entry-point group of an installed
package (``[project.entry-points."backtestlab.strategies"] rsi = "my_pkg.rsi"``).  A path or
entry point names a module (every :class:`Strategy` subclass defined in it is registered), a
class, or an instance.  A module that fails to import or a strategy that declares a bad
parameter space raises :class:`StrategyLoadError` naming it, at start-up.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import re
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from ..parameters import ParameterError, ParameterSpace, did_you_mean
from ..signals import Params
from .base import Strategy
from .funding_carry import FundingCarry
from .market_state import MarketState
from .options_selector import OptionsSelector
from .sma_cross import SmaCross
from .smc import Smc

ENTRY_POINT_GROUP = "backtestlab.strategies"
DATA_KINDS = ("candles", "environment")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")

STRATEGIES: dict[str, Strategy] = {}


class StrategyLoadError(Exception):
    """A user strategy module or class that cannot be loaded (the message names it)."""


def register(strategy: Strategy) -> Strategy:
    """Add a strategy instance to :data:`STRATEGIES` (keyed by ``strategy.key``)."""
    if strategy.key in STRATEGIES and STRATEGIES[strategy.key] is not strategy:
        raise ValueError(f"strategy key {strategy.key!r} is already registered")
    STRATEGIES[strategy.key] = strategy
    return strategy


def get_strategy(key: str) -> Strategy:
    """Registered strategy by key; ParameterError("strategy", ...) with a suggestion if
    unknown."""
    try:
        return STRATEGIES[key]
    except (KeyError, TypeError):
        raise ParameterError("strategy", did_you_mean("strategy", key, list(STRATEGIES))) from None


def strategy_problems(strategy: Any) -> list[str]:
    """What is wrong with a strategy's declaration (empty when it can be registered)."""
    problems = []
    key = getattr(strategy, "key", None)
    if not isinstance(key, str) or not _KEY.match(key):
        problems.append(
            f"key must be lower-case letters, digits and underscores (e.g. 'rsi_reversion'), "
            f"got {key!r}"
        )
    if not isinstance(getattr(strategy, "label", None), str) or not strategy.label.strip():
        problems.append("label must be a non-empty string (shown in the lab)")
    try:
        space = strategy.parameter_space()
    except Exception as exc:  # noqa: BLE001 - reported with the strategy's name
        return [*problems, f"parameter_space() raised {type(exc).__name__}: {exc}"]
    if not isinstance(space, ParameterSpace):
        return [*problems, "parameters must be a ParameterSpace([...Param...])"]
    try:
        defaults = space.validate_params(space.defaults())
    except ParameterError as exc:
        problems.append(f"a default is outside its own bounds or choices: {exc}")
        defaults = None
    if type(strategy).signals is Strategy.signals:
        problems.append("signals(ctx, p) is not defined")
    if strategy.data_kind not in DATA_KINDS:
        problems.append(f"data_kind must be one of {', '.join(DATA_KINDS)}")
    unknown = [g for g in strategy.group_by if g not in space]
    if unknown:
        problems.append(f"group_by names unknown parameter {unknown[0]!r}")
    if defaults is not None:
        try:
            warm = strategy.warmup(Params(defaults))
        except Exception as exc:  # noqa: BLE001
            problems.append(f"warmup(defaults) raised {type(exc).__name__}: {exc}")
        else:
            ok = isinstance(warm, dt.timedelta) and warm >= dt.timedelta(0)
            ok = ok or (isinstance(warm, int) and not isinstance(warm, bool) and warm >= 0)
            if not ok:
                problems.append(
                    "warmup(p) must return a whole number of bars >= 0 or a timedelta, "
                    f"got {warm!r}"
                )
    return problems


def _strategies_in(obj: Any, origin: str) -> list[Strategy]:
    if inspect.ismodule(obj):
        found = [
            cls()
            for _, cls in inspect.getmembers(obj, inspect.isclass)
            if issubclass(cls, Strategy)
            and cls is not Strategy
            and cls.__module__ == obj.__name__
            and "key" in vars(cls)
        ]
        if not found:
            raise StrategyLoadError(f"{origin}: the module defines no Strategy subclass with a key")
        return found
    if inspect.isclass(obj) and issubclass(obj, Strategy):
        return [obj()]
    if isinstance(obj, Strategy):
        return [obj]
    raise StrategyLoadError(f"{origin}: not a strategy module, Strategy subclass or instance")


def _import(path: str) -> Any:
    """The module ``path``, or the attribute ``name`` of module ``pkg.mod`` for
    ``pkg.mod.name``."""
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        module, _, attr = path.rpartition(".")
        if not module or exc.name != path:
            raise
        parent = importlib.import_module(module)
        if not hasattr(parent, attr):
            raise ModuleNotFoundError(
                f"no module named {path!r}, and module {module!r} has no attribute {attr!r}"
            ) from None
        return getattr(parent, attr)


def load_strategies(paths: Iterable[str] = (), *, use_entry_points: bool = True) -> list[Strategy]:
    """Import and register the strategies named by dotted ``paths`` and by the
    ``backtestlab.strategies`` entry points; returns the newly registered ones.

    Idempotent (a strategy already registered from the same class is skipped).  Raises
    :class:`StrategyLoadError` naming the module or entry point that failed.
    """
    sources: list[tuple[str, Any]] = []
    for path in paths:
        origin = f"BACKTESTLAB_STRATEGIES entry {path!r}"
        try:
            sources.append((origin, _import(path)))
        except Exception as exc:
            raise StrategyLoadError(
                f"{origin} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
    if use_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            origin = f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP}"
            try:
                sources.append((origin, ep.load()))
            except Exception as exc:
                raise StrategyLoadError(
                    f"{origin} failed to import: {type(exc).__name__}: {exc}"
                ) from exc
    added = []
    for origin, obj in sources:
        for strategy in _strategies_in(obj, origin):
            known = STRATEGIES.get(getattr(strategy, "key", None))
            if known is not None and type(known) is type(strategy):
                continue
            problems = strategy_problems(strategy)
            if problems:
                name = f"{type(strategy).__module__}.{type(strategy).__qualname__}"
                raise StrategyLoadError(f"{origin}: strategy {name}: " + "; ".join(problems))
            if known is not None:
                raise StrategyLoadError(
                    f"{origin}: strategy key {strategy.key!r} is already taken by "
                    f"{type(known).__module__}.{type(known).__qualname__}"
                )
            added.append(register(strategy))
    return added


register(SmaCross())
register(FundingCarry())
register(OptionsSelector())
register(Smc())
register(MarketState())
