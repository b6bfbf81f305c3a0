"""`manage.py bootstrap_demo` (what `make run` runs): the universe, the demo jobs, the paper book,
and nothing twice (the approval walk-through on the full span: tests/integration/
test_browser_gate.py)."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.lab.management.commands.bootstrap_demo import (
    DEMO_DAYS,
    GATE_GRID,
    GATE_JOB_NAME,
    GATE_STRATEGY,
    GATE_SYMBOL,
    PAPER_START_DAYS_AGO,
    SMA_JOB_NAME,
)
from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationJob
from apps.strategies.models import PaperBook

pytestmark = pytest.mark.django_db


def test_the_demo_spans_four_years():
    assert DEMO_DAYS >= 4 * 365


def test_companions_can_be_left_out():
    made = synthetic_universe_create(
        symbols=("BTC",), days=3, timeframes=(), with_minutes=True, with_companions=False
    )
    assert [(d.kind, d.timeframe, d.rows) for d in made] == [("candles", "1m", 3 * 1440)]


def test_bootstrap_demo_sets_up_the_walk_through_once(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "demo-pw-123")
    call_command("bootstrap_demo", days=40, minute_days=2)
    names = sorted(Dataset.objects.values_list("name", flat=True))
    assert names == sorted(
        [f"{s} {label} synthetic 40d seed42" for s in ("BTC", "ETH")
         for label in ("1h", "4h", "1d", "funding", "environment")]
        + ["BTC 1m synthetic 2d seed42", "ETH 1m synthetic 2d seed42"]
    )  # fmt: skip
    gate = OptimizationJob.objects.get(name=GATE_JOB_NAME)
    assert gate.strategy == GATE_STRATEGY
    assert {name: gate.grid[name] for name in GATE_GRID} == GATE_GRID  # + the defaults
    (dataset,) = gate.datasets.all()
    assert (dataset.symbol, dataset.kind, dataset.rows) == (GATE_SYMBOL, "environment", 40)
    sma = OptimizationJob.objects.get(name=SMA_JOB_NAME)
    assert [d.name for d in sma.datasets.all()] == ["BTC 1h synthetic 40d seed42"]
    book = PaperBook.objects.get()
    assert (book.strategy, book.symbol, book.timeframe, book.enabled) == (
        GATE_STRATEGY, GATE_SYMBOL, "1d", True,
    )  # fmt: skip
    assert book.start_day == timezone.now().date() - dt.timedelta(days=PAPER_START_DAYS_AGO)

    call_command("bootstrap_demo", days=40, minute_days=2)
    assert Dataset.objects.count() == len(names)
    assert OptimizationJob.objects.count() == 2 and PaperBook.objects.count() == 1


def test_without_the_sma_sweep_only_the_walk_through_job_is_made():
    call_command("bootstrap_demo", days=40, minute_days=0, no_sma_sweep=True)
    assert list(OptimizationJob.objects.values_list("name", flat=True)) == [GATE_JOB_NAME]
    assert not Dataset.objects.filter(timeframe="1m").exists()
