"""Fixtures of the production side: a finished sweep, approvals, the apply permission."""

import pytest
from django.contrib.auth.models import Permission

from apps.optimization.models import OptimizationRun
from apps.strategies.models import StrategyApproval, StrategyConfig
from tests.factories import make_job, run_all_chunks


def grant(user, codename: str = "apply_parameters"):
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh object: the permission cache is per object


def approve(stage: str = "PILOT", strategy: str = "sma_cross") -> StrategyApproval:
    return StrategyApproval.objects.create(
        strategy=strategy, stage=stage, reason="test", trigger="api"
    )


@pytest.fixture
def sweep(alice, datasets):
    """A finished sma_cross sweep on BTC 1h (12 runs)."""
    job = make_job(alice, datasets[:1])
    run_all_chunks(job)
    assert job.status == "succeeded"
    return job


def ranked(job) -> list[OptimizationRun]:
    runs = OptimizationRun.objects.filter(job=job, sharpe__isnull=False).order_by("-sharpe", "id")
    return list(runs)


@pytest.fixture
def weak_production(sweep):
    """Production v1 = the sweep's worst parameters, so its best run is a clear improvement."""
    worst = ranked(sweep)[-1]
    return StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1, params=worst.params
    )
