"""schemathesis against /api/schema/, logged in: no server error and no response outside the schema.

Every operation gets at least 100 generated requests (hypothesis, derandomized so a run is
repeatable, no deadline: the machine is small). Path ids point at real objects half of the
time, so detail and action endpoints are exercised past their 404. Job creation does not start
work here: the test runs in a transaction, so the enqueue-after-commit never fires. The world,
token and settings are shared with the PostgreSQL run (tests/api_fuzz.py).

Checks: all of schemathesis's defaults but ``positive_data_acceptance`` (the schema cannot say
that a dataset id must exist, or that a grid must stay under the combination cap); the
PostgreSQL run (tests/integration/test_api_fuzz_postgres.py) applies every check, that one
where it can apply.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.management import call_command
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backtestlab.wsgi import application
from tests import api_fuzz
from tests.api_fuzz import FUZZ_SETTINGS, point_at_real_objects, token_auth

pytestmark = pytest.mark.django_db
fuzz_world = api_fuzz.fuzz_world  # fixtures shared with the PostgreSQL run
one_connection = api_fuzz.one_connection

# Loaded at collection: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
token_auth(schema)


@schema.parametrize()
@FUZZ_SETTINGS
def test_the_api_answers_every_generated_request_within_its_schema(
    case, fuzz_world, one_connection
):
    point_at_real_objects(case, fuzz_world["ids"])
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


def test_the_schema_states_the_bounds_the_views_enforce(client):
    """page_size, limit, points, the tools' steps and n_splits had no minimum (issue 14): a
    client could not know that 0 is refused, and the fuzzer could not aim at the edge."""
    schema = client.get("/api/schema/?format=json").json()

    def query(path: str, name: str) -> dict:
        (parameter,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
        return parameter["schema"]

    for path in ("/api/jobs/", "/api/datasets/", "/api/jobs/{id}/runs/"):
        assert query(path, "page_size")["minimum"] == 1 and query(path, "page")["minimum"] == 1
    limit, points = (
        query("/api/jobs/{id}/best/", "limit"),
        query("/api/runs/{id}/detail/", "points"),
    )
    assert (limit["minimum"], limit["maximum"]) == (1, 100)
    assert (points["minimum"], points["maximum"]) == (100, 2000)
    assert query("/api/jobs/{id}/sensitivity/", "run")["minimum"] == 1
    assert query("/api/jobs/{id}/runs/", "dataset")["minimum"] == 1
    assert "--sharpe" not in query("/api/jobs/{id}/runs/", "ordering")["enum"]
    components = schema["components"]["schemas"]
    for name, steps in {
        "EnvironmentHeatmapRequest": ("x_step", "y_step"),
        "SelectorHeatmapRequest": ("x_step", "y_step"),
        "SelectorScanRequest": ("step",),
    }.items():
        for step in steps:
            field = components[name]["properties"][step]
            assert (field["minimum"], field["exclusiveMinimum"]) == (0, True), (name, step)
    walk_forward = components["WalkForwardJobRequestRequest"]["properties"]
    assert (walk_forward["n_splits"]["minimum"], walk_forward["n_splits"]["maximum"]) == (1, 50)


def test_the_schema_says_that_text_holds_no_nul_character(client):
    """The API refuses a NUL character in any query parameter or body text (issue 14); the
    schema says so, or a client (and schemathesis's positive_data_acceptance) would send one."""
    schema = client.get("/api/schema/?format=json").json()
    no_nul = "^[^\\u0000]*$"
    texts = [
        p["schema"]
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in {"get", "post", "put"}
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p["schema"].get("type") == "string"
    ]
    components = schema["components"]["schemas"]
    texts += [
        field
        for name, component in components.items()
        if name.endswith("Request")
        for field in component.get("properties", {}).values()
        if field.get("type") == "string" and field.get("format") != "binary"
    ]
    assert len(texts) > 30
    assert all("enum" in t or t.get("pattern") == no_nul for t in texts), texts
    assert components["JobCreateRequest"]["properties"]["description"]["pattern"] == no_nul
