"""The strategy registry (backtestlab.engine.strategies): lookup by key, did-you-mean."""

from __future__ import annotations

import pytest

from backtestlab.engine.parameters import ParameterError
from backtestlab.engine.strategies import (
    STRATEGIES,
    StrategyLoadError,
    get_strategy,
    load_strategies,
    strategy_problems,
)


def test_registry():
    assert "sma_cross" in STRATEGIES
    s = get_strategy("sma_cross")
    assert s.label == "SMA crossover" and s.data_kind == "candles"
    with pytest.raises(ParameterError) as exc:
        get_strategy("sma")
    assert exc.value.field == "strategy"
    assert "did you mean 'sma_cross'?" in str(exc.value)
    assert "Known: sma_cross" in str(exc.value)


# --------------------------------------------------------------------------- user strategies

GOOD = """
from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Signals, crossed_above, crossed_below
from backtestlab.engine.strategies.base import Strategy


class Helper:  # not a strategy: ignored
    pass


class {cls}(Strategy):
    key = "{key}"
    label = "A team's strategy"
    parameters = ParameterSpace([Param("window", "int", 20, 2, 200)])

    def signals(self, ctx, p):
        m = ctx.sma(p.window)
        return Signals(entries=crossed_above(ctx.data.close, m),
                       exits=crossed_below(ctx.data.close, m))
"""


@pytest.fixture
def team_package(tmp_path, monkeypatch):
    """Write modules of a team package on sys.path; forget what they register afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = dict(STRATEGIES)

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        return name

    yield write
    for key in set(STRATEGIES) - set(before):
        STRATEGIES.pop(key)


def test_a_module_path_registers_its_strategies_once(team_package):
    module = team_package("team_mod_a", GOOD.format(cls="TeamSma", key="team_sma"))
    added = load_strategies([module], use_entry_points=False)
    assert [s.key for s in added] == ["team_sma"]
    assert get_strategy("team_sma") is added[0]
    assert load_strategies([module], use_entry_points=False) == []  # idempotent


def test_a_class_path_registers_that_class(team_package):
    module = team_package("team_mod_b", GOOD.format(cls="TeamSmaB", key="team_sma_b"))
    added = load_strategies([f"{module}.TeamSmaB"], use_entry_points=False)
    assert [type(s).__name__ for s in added] == ["TeamSmaB"]


def test_a_module_that_fails_to_import_is_named(team_package):
    with pytest.raises(StrategyLoadError) as exc:
        load_strategies(["team_no_such_module"], use_entry_points=False)
    assert str(exc.value).startswith(
        "BACKTESTLAB_STRATEGIES entry 'team_no_such_module' failed to import: ModuleNotFoundError"
    )
    broken = team_package("team_mod_broken", "import numpy as np\nx = 1 / 0\n")
    with pytest.raises(StrategyLoadError, match="'team_mod_broken' failed to import: Zero"):
        load_strategies([broken], use_entry_points=False)


def test_a_bad_declaration_names_the_class_and_every_problem(team_package):
    source = (
        GOOD.format(cls="BadSma", key="Bad Key")
        .replace('Param("window", "int", 20, 2, 200)', 'Param("window", "int", 500, 2, 200)')
        .replace("    def signals(", "    group_by = ('pattern',)\n\n    def _unused(")
    )
    module = team_package("team_mod_bad", source)
    with pytest.raises(StrategyLoadError) as exc:
        load_strategies([module], use_entry_points=False)
    message = str(exc.value)
    assert "team_mod_bad.BadSma" in message
    assert "key must be lower-case letters" in message
    assert "a default is outside its own bounds or choices" in message
    assert "signals(ctx, p) is not defined" in message
    assert "group_by names unknown parameter 'pattern'" in message
    assert "Bad Key" not in STRATEGIES


def test_a_key_taken_by_another_class_is_refused(team_package):
    module = team_package("team_mod_dup", GOOD.format(cls="Impostor", key="sma_cross"))
    with pytest.raises(StrategyLoadError, match="key 'sma_cross' is already taken by"):
        load_strategies([module], use_entry_points=False)
    assert type(get_strategy("sma_cross")).__name__ == "SmaCross"


def test_a_module_without_strategies_is_refused(team_package):
    module = team_package("team_mod_empty", "X = 1\n")
    with pytest.raises(StrategyLoadError, match="defines no Strategy subclass with a key"):
        load_strategies([module], use_entry_points=False)


def test_the_examples_come_in_through_their_entry_points():
    keys = {s.key for s in load_strategies()} | set(STRATEGIES)
    assert {"rsi_reversion", "bollinger_breakout"} <= keys
    for key in ("rsi_reversion", "bollinger_breakout"):
        assert strategy_problems(get_strategy(key)) == []
