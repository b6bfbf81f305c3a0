"""schemathesis against /api/schema/, logged in: no server error and no response outside the schema.

Every operation gets at least 100 generated requests (hypothesis, derandomized so a run is
repeatable, no deadline: the machine is small). Path ids point at real objects half of the
time, so detail and action endpoints are exercised past their 404. Job creation does not start
work here: the test runs in a transaction, so the enqueue-after-commit never fires.

Checks: all of schemathesis's defaults but ``positive_data_acceptance`` (the schema cannot say
that a dataset id must exist, or that a grid must stay under the combination cap).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationRun
from backtestlab.wsgi import application
from tests.factories import make_job, run_all_chunks

pytestmark = pytest.mark.django_db

EXAMPLES = 100


# Loaded at collection: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
TOKEN = "fuzz" * 10  # alice's token in every test's world (a fixed key: auth is cached)


@schema.auth()
class TokenAuth:
    """Registered with schemathesis so its ignored_auth check can also try without it."""

    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Token {data}"}


@pytest.fixture
def world(alice, settings):
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


def _real_ids(case, ids) -> None:
    """Every other example: path ids of real objects (runs under /runs/, datasets, jobs)."""
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        if not isinstance(value, int) or value % 2:
            continue
        path = case.operation.path
        if "{key}" in path and name == "key":
            continue
        kind = "run" if path.startswith("/api/runs/") else "job"
        kind = "dataset" if path.startswith("/api/datasets/") else kind
        params[name] = ids[kind]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_within_its_schema(case, world):
    _real_ids(case, world["ids"])
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_every_operation_documents_the_error_shape(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    operations = [op for item in paths.values() for m, op in item.items() if m in {"get", "post"}]
    assert operations and all("default" in op["responses"] for op in operations)
