"""manage.py check_strategy: synthetic or stored data, the verdict, errors that help."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backtestlab.engine.parameters import Param, ParameterSpace
from backtestlab.engine.signals import Signals
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.engine.strategies.base import Strategy


def _call(*args) -> str:
    out = StringIO()
    call_command("check_strategy", *args, stdout=out)
    return out.getvalue()


def test_sma_cross_passes_on_synthetic_hourly_candles():
    out = _call("sma_cross")
    assert out.splitlines()[0] == "checked sma_cross on synthetic 90 days of BTC 1h candles"
    assert "sma_cross: PASS (2160 bars" in out
    assert "[pass] lookahead" in out and "[pass] warmup" in out


def test_unknown_key_lists_the_known_strategies():
    with pytest.raises(CommandError) as exc:
        _call("sma_crossover")
    msg = str(exc.value)
    assert "unknown strategy 'sma_crossover'" in msg
    for key in ("sma_cross", "funding_carry", "options_selector", "smc_zones", "market_state"):
        assert key in msg


class _Peek(Strategy):
    key = "peek_test"
    label = "Peek"
    parameters = ParameterSpace([Param("n", "int", 1, 1, 5)])

    def signals(self, ctx, p):
        close = ctx.data.close
        return Signals(entries=np.roll(close, -p.n) > close)


def test_a_failing_check_exits_with_an_error(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "peek_test", _Peek())
    out = StringIO()
    with pytest.raises(CommandError, match="peek_test failed the lookahead check: entries at bar"):
        call_command("check_strategy", "peek_test", "--days", "30", stdout=out)
    assert "[FAIL] lookahead" in out.getvalue()
    assert "reads the future" in out.getvalue()


def test_bad_days_is_refused():
    with pytest.raises(CommandError, match="--days must be at least 1"):
        _call("sma_cross", "--days", "0")


def test_a_stored_dataset_is_checked(datasets):
    dataset = datasets[0]
    out = _call("sma_cross", "--dataset", str(dataset.id), "--days", "45")
    assert out.splitlines()[0].startswith(f"checked sma_cross on dataset {dataset.id} (")
    assert "last 45 days" in out.splitlines()[0]
    assert "sma_cross: PASS" in out


def test_dataset_of_the_wrong_kind_or_missing(datasets):
    with pytest.raises(CommandError, match="options_selector runs on environment datasets"):
        _call("options_selector", "--dataset", str(datasets[0].id))
    with pytest.raises(CommandError, match="dataset 999999 does not exist"):
        _call("sma_cross", "--dataset", "999999")
