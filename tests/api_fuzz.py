"""What the schemathesis runs share: the logged-in world, the token, pinned hypothesis settings.

``tests/project/test_api_fuzz.py`` fuzzes the API on SQLite with the unit suite;
``tests/integration/test_api_fuzz_postgres.py`` fuzzes it on PostgreSQL, where NUL characters,
integer ranges and transactions behave as in production. Each module loads its own schema
object (schemathesis parametrizes per schema) and registers the token on it here.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationRun
from tests.factories import make_job, run_all_chunks

EXAMPLES = 100
TOKEN = "fuzz" * 10  # alice's token in every test's world (a fixed key: auth is cached)

# >= 100 generated requests per operation, the same ones on every run (derandomized: the seed
# is a hash of the test), no deadline (the machine is small), no example database.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def token_auth(schema) -> None:
    """Register alice's token with schemathesis, so its ignored_auth check can also try the
    same request without it."""

    @schema.auth()
    class TokenAuth:
        def get(self, case, context):
            return TOKEN

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


@pytest.fixture
def fuzz_world(alice, settings):
    """A token, BTC data with its companions, and a finished job with runs to point ids at."""
    settings.BACKTESTLAB = {
        **settings.BACKTESTLAB,
        "JOBS_PER_MINUTE": 10_000,
        "MAX_ACTIVE_JOBS_PER_USER": 10_000,
        "MAX_COMBINATIONS": 2_000,
    }
    synthetic_universe_create(symbols=("BTC",), days=20, timeframes=("1h",))
    candles = Dataset.objects.get(kind=Dataset.Kind.CANDLES)
    job = make_job(alice, [candles], grid={"fast": [5, 10], "slow": [50]})
    run_all_chunks(job)
    run = OptimizationRun.objects.filter(job=job).first()
    return {
        "token": Token.objects.create(user=alice, key=TOKEN).key,
        "ids": {"job": job.id, "run": run.id, "dataset": candles.id},
    }


@pytest.fixture
def one_connection():
    """Requests reach the WSGI application directly (not through Django's test client), so
    Django's end-of-request hook would close the test's database connection and, on PostgreSQL,
    its transaction with it; the test client unhooks it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def point_at_real_objects(case, ids) -> None:
    """Every other example: path ids of real objects (runs under /runs/, datasets, jobs) and
    a real strategy key, so detail and action endpoints are exercised past their 404."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if name == "key":
            if len(str(value)) % 2 == 0:
                params[name] = "sma_cross"
            continue
        if not isinstance(value, int) or value % 2:
            continue
        path = case.operation.path
        kind = "run" if path.startswith("/api/runs/") else "job"
        kind = "dataset" if path.startswith("/api/datasets/") else kind
        params[name] = ids[kind]
