"""schemathesis on PostgreSQL, logged in, with every check: 0 server errors, 0 schema violations.

The unit run (tests/project/test_api_fuzz.py) fuzzes on SQLite, which stores a NUL character,
never overflows a bigint in a comparison and forgives a broken transaction; this run finds
what that one cannot (a NUL in a name or a query was a 500 here only, issue 14). Same world,
token and pinned hypothesis settings (tests/api_fuzz.py): >= 100 generated requests per
operation, derandomized, path ids and strategy keys pointing at real objects every other
example. Job creation starts no work: the test runs in a transaction, so the
enqueue-after-commit never fires.

Every check schemathesis has is on (not_a_server_error, status_code_conformance,
content_type_conformance, response_headers_conformance, response_schema_conformance,
negative_data_rejection, missing_required_header, unsupported_method,
allow_header_conformance, ignored_auth), with these exceptions, each for a stated reason
(``max_response_time`` is a budget, not a check of answers: it runs only when given a limit,
and this shared 2-CPU machine sets none):

``positive_data_acceptance`` (a request the schema allows must not be refused with a 400) runs
on every operation but the POSITIVE_DATA_UNSATISFIABLE ones below: what they accept depends on
stored data or on rules between fields that an OpenAPI 3.0 schema cannot state. Their 400s are
the bad-input answers tested in tests/project/test_bad_input.py.

The stateful checks run in test_linked_requests_on_postgresql, on schemathesis's state
machine (its links are inferred from the schema: a created job's id into its detail, runs,
cancel, ...): ``ensure_resource_availability`` (what a POST created, the linked GET finds) and
``use_after_free`` (which applies only after a successful DELETE: the API has none, jobs are
cancelled, never deleted, so it has nothing to check). ``object_level_authorization`` needs
schemathesis's multi-identity provider (``[auth.wfc]``, several logins compared); team
visibility is instead tested for every job and run URL of the URLconf, as owner, colleague,
outsider and staff, by tests/project/test_access.py -k teams_objects.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backtestlab.wsgi import application
from tests import api_fuzz
from tests.api_fuzz import FUZZ_SETTINGS, point_at_real_objects, token_auth

pytestmark = pytest.mark.django_db
fuzz_world = api_fuzz.fuzz_world  # fixtures shared with the SQLite run
one_connection = api_fuzz.one_connection

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
token_auth(schema)

POSITIVE_DATA_UNSATISFIABLE = {
    "POST /api/jobs/": "datasets must exist and hold the strategy's kind of data, the grid's "
    "parameter names and bounds depend on the strategy, runs are capped by MAX_COMBINATIONS",
    "POST /api/jobs/plan/": "the same as POST /api/jobs/: stored datasets of the strategy's "
    "data kind, parameter names and bounds per strategy, runs capped by MAX_COMBINATIONS",
    "POST /api/jobs/walk_forward/": "either job, or strategy with dataset and grid (stored, "
    "per-strategy), and train_frac + test_frac must be 1",
    "POST /api/carry/compare": "dataset must be a stored candle dataset with a funding series, "
    "and date_from before date_to inside its data",
    "POST /api/environment_heatmap": "a grid must stay within the float range and its step must "
    "tell values apart next to its start (start + i * step, a rule between fields)",
    "POST /api/selector_scan": "the same grid rule between start and step",
    "POST /api/selector_heatmap": "the same grid rule between start and step, per axis",
    "GET /api/jobs/{id}/heatmap/": "x, y, group and fixed.<parameter> name parameters and "
    "values of that job (stored, per strategy), and view=neighbourhood takes only that job's "
    "objective as metric",
    "GET /api/jobs/{id}/sensitivity/": "run must be a run of that very job",
    "GET /api/jobs/compare/": "ids must be 2 to 4 different job ids (a comma-separated string "
    "cannot be declared distinct)",
    "POST /api/token/": "username and password must be a stored user's (DRF answers 400, and "
    "schemathesis exempts only token URLs declared by a security scheme)",
}


def excluded_checks(case) -> list:
    if case.operation.label in POSITIVE_DATA_UNSATISFIABLE:
        return [positive_data_acceptance]
    return []


def test_the_unsatisfiable_operations_exist():
    """A renamed operation must not silently keep an exclusion that no longer applies."""
    labels = {operation.ok().label for operation in schema.get_all_operations()}
    assert set(POSITIVE_DATA_UNSATISFIABLE) <= labels, set(POSITIVE_DATA_UNSATISFIABLE) - labels


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_check_on_postgresql(case, fuzz_world, one_connection):
    point_at_real_objects(case, fuzz_world["ids"])
    case.call_and_validate(excluded_checks=excluded_checks(case))


def test_linked_requests_on_postgresql(fuzz_world, one_connection):
    """Sequences of linked calls (create a job, then read, cancel, re-run it, ...) with every
    check, the stateful ones included; 60 sequences of up to 6 steps, derandomized."""

    class LinkedRequests(schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                excluded_checks=excluded_checks(case),
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    run_state_machine_as_test(
        LinkedRequests,
        settings=settings(
            max_examples=60,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
