"""Bad input on every write surface: a 4xx naming the field, and not one row written.

One matrix per surface (REST endpoints, lab forms, the admin add form, the import command),
each case checked the same way: the status, the field named in the answer, and the row count
of every model unchanged. Surface-specific suites (tests/lab, tests/optimization,
tests/market) go deeper on their own messages; this file keeps the whole list in one place.
"""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.utils.html import escape
from rest_framework.test import APIClient

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.optimization.models import OptimizationJob
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def model_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


@pytest.fixture
def btc(db):
    """BTC hourly candles with their funding and environment series (10 synthetic days)."""
    synthetic_universe_create(symbols=("BTC",), days=10, timeframes=("1h",))
    return {ds.kind: ds for ds in Dataset.objects.all()}


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


def post_raw(client, path: str, body) -> object:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, raw, content_type="application/json")


def assert_refused(response, field: str | None, before: dict, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["ok"] is False and body["error"], body
    if field is not None:
        assert (body.get("field") or "").startswith(field), body
    assert model_counts() == before
    return body


# --- POST /api/jobs/ ---------------------------------------------------------------------------

GOOD_JOB = {
    "name": "bad input",
    "strategy": "sma_cross",
    "parameter_grid": {"fast": [5, 10], "slow": [50]},
    "objective": "sharpe",
}
HUGE = {"start": 0.1, "stop": 50, "step": 1e-9}  # ~5e10 values: refused from its count alone


def _job(candles, **change):
    body = {**GOOD_JOB, "datasets": [candles.id], **change}
    return {k: v for k, v in body.items() if v is not ...}


JOB_CASES = {
    # non-finite numbers arrive as literals (NaN, Infinity) or overflow (1e309)
    "nan in a grid list": ('{"sl_pct": [NaN]}', "parameter_grid.sl_pct"),
    "inf in a grid list": ('{"sl_pct": [Infinity]}', "parameter_grid.sl_pct"),
    "-inf in a range": ('{"sl_pct": {"start": -Infinity, "stop": 2, "step": 1}}', "parameter_grid"),
    "1e309 in a step": ('{"sl_pct": {"start": 1, "stop": 2, "step": 1e309}}', "parameter_grid"),
    "nan in costs": ('{"fast": [5]}, "costs": {"commission_pct": NaN}', "costs"),
    "1e309 in costs": ('{"fast": [5]}, "costs": {"slippage_pct": 1e309}', "costs"),
}


@pytest.mark.parametrize("case", list(JOB_CASES))
def test_non_finite_numbers_in_a_job_are_a_400_naming_the_field(api, btc, case):
    grid, field = JOB_CASES[case]
    raw = json.dumps(_job(btc["candles"], parameter_grid=None))
    raw = raw.replace('"parameter_grid": null', f'"parameter_grid": {grid}')
    before = model_counts()
    assert_refused(post_raw(api, "/api/jobs/", raw), field, before)


@pytest.mark.parametrize(
    "change, field",
    [
        # wrong types
        ({"datasets": "1"}, "datasets"),
        ({"datasets": [True]}, "datasets"),
        ({"parameter_grid": [5, 10]}, "parameter_grid"),
        ({"parameter_grid": {"fast": "5"}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": [5.5]}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": [True]}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": [None]}}, "parameter_grid.fast"),
        ({"costs": "cheap"}, "costs"),
        ({"costs": {"commission_pct": "0.1"}}, "costs"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"name": ["a"]}, "name"),
        ({"description": "x" * 2001}, "description"),  # 2.4 MB were accepted (issue 14)
        ({"objective": 5}, "objective"),
        # missing fields
        ({"name": ...}, "name"),
        ({"strategy": ...}, "strategy"),
        ({"datasets": ...}, "datasets"),
        ({"parameter_grid": ...}, "parameter_grid"),
        # zero and negative steps, min > max
        ({"parameter_grid": {"fast": {"start": 5, "stop": 50, "step": 0}}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": {"start": 5, "stop": 50, "step": -5}}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": {"start": 50, "stop": 5, "step": 5}}}, "parameter_grid.fast"),
        ({"parameter_grid": {"fast": [1]}}, "parameter_grid.fast"),  # below the bound
        ({"date_from": "2030-01-02", "date_to": "2030-01-01"}, "date_from"),
        # unknown strategy / parameter / metric / dataset
        ({"strategy": "sma_crosss"}, "strategy"),
        ({"parameter_grid": {"fsat": [5]}}, "parameter_grid.fsat"),
        ({"objective": "luck"}, "objective"),
        ({"datasets": [987654]}, "datasets"),
        ({"datasets": [2**70]}, "datasets"),
        # over the combination cap, refused before expansion
        ({"parameter_grid": {"sl_pct": HUGE, "rr": HUGE}}, "parameter_grid"),
        ({"parameter_grid": {"fast": list(range(2, 501)), "slow": list(range(3, 1003))}}, None),
    ],
)
def test_a_bad_job_is_a_400_naming_the_field_and_writes_nothing(api, btc, change, field):
    before = model_counts()
    response = post_raw(api, "/api/jobs/", _job(btc["candles"], **change))
    assert_refused(response, field, before)


def test_a_job_on_a_dataset_of_the_wrong_kind_is_refused(api, btc):
    before = model_counts()
    response = post_raw(api, "/api/jobs/", _job(btc["funding"]))
    assert_refused(response, "datasets", before)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "null", ""])
def test_a_job_body_that_is_not_a_json_object_is_a_400(api, btc, raw):
    before = model_counts()
    assert_refused(post_raw(api, "/api/jobs/", raw), None, before)


def test_an_oversized_job_body_is_a_413(api, btc, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    before = model_counts()
    grid = {"sl_pct": [1 + i / 1e4 for i in range(2000)]}
    response = post_raw(api, "/api/jobs/", _job(btc["candles"], parameter_grid=grid))
    assert_refused(response, None, before, status=413)


# --- POST /api/jobs/{id}/cancel/ and /rerun/ ---------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "rerun"])
@pytest.mark.parametrize("job_id", ["987654", "abc", "-1", "1.5", str(2**70)])
def test_an_unknown_or_malformed_job_id_is_a_404(api, btc, action, job_id):
    before = model_counts()
    response = api.post(f"/api/jobs/{job_id}/{action}/", "NaN", content_type="application/json")
    assert response.status_code == 404
    assert model_counts() == before


def test_cancelling_a_cancelled_job_is_a_409_naming_the_status(api, alice, btc):
    job = make_job(alice, [btc["candles"]], grid={"fast": [5]})
    assert api.post(f"/api/jobs/{job.id}/cancel/").status_code == 200
    before = model_counts()
    assert_refused(api.post(f"/api/jobs/{job.id}/cancel/"), "status", before, status=409)


# --- synthetic tools and carry compare -------------------------------------------------------

HEATMAP = {
    "underlying": "BTC",
    "x_metric": "vrp_30d",
    "y_metric": "adx_14d",
    "horizon_days": 30,
    "x_start": -10,
    "x_step": 5,
    "x_points": 4,
    "y_start": 10,
    "y_step": 10,
    "y_points": 3,
}
SCAN = {"underlying": "BTC", "param": "min_vrp_30d", "start": 0, "step": 1, "points": 3}
SELECTOR_HEATMAP = {
    "underlying": "BTC",
    "x_param": "min_vrp_30d",
    "y_param": "max_adx_14d",
    "x_start": 0,
    "x_step": 1,
    "x_points": 3,
    "y_start": 20,
    "y_step": 5,
    "y_points": 3,
}
TOOLS = {
    "/api/environment_heatmap": (HEATMAP, "x_start", "x_step", "x_metric"),
    "/api/selector_scan": (SCAN, "start", "step", "param"),
    "/api/selector_heatmap": (SELECTOR_HEATMAP, "x_start", "x_step", "x_param"),
}


def _tool_cases():
    for path, (base, number, step, name) in TOOLS.items():
        literal = json.dumps(base)
        for lit in ("NaN", "Infinity", "-Infinity", "1e309"):
            raw = literal.replace(f'"{number}": {json.dumps(base[number])}', f'"{number}": {lit}')
            yield path, raw, number
        yield path, {**base, number: "5"}, number  # wrong type
        yield path, {**base, number: True}, number
        yield path, {k: v for k, v in base.items() if k != number}, number  # missing
        yield path, {**base, step: 0}, step
        yield path, {**base, step: -1}, step
        yield path, {**base, name: "vrp"}, name  # unknown metric / threshold
        yield path, {**base, "underlying": "DOGE"}, "underlying"
        yield path, {**base, "x_stat": 1}, "x_stat"  # unknown field


@pytest.mark.parametrize("path, body, field", list(_tool_cases()))
def test_a_bad_synthetic_tool_request_is_a_400_naming_the_field(api, path, body, field):
    before = model_counts()
    assert_refused(post_raw(api, path, body), field, before)


@pytest.mark.parametrize("path", [*TOOLS, "/api/carry/compare"])
def test_an_oversized_tool_body_is_a_413(api, path, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    before = model_counts()
    assert_refused(post_raw(api, path, {"pad": "x" * 5000}), None, before, status=413)


def _carry(btc, **change):
    body = {"dataset": btc["candles"].id, **change}
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"dataset": ...}, "dataset"),
        ({"dataset": "1"}, "dataset"),
        ({"dataset": 987654}, "dataset"),
        ({"dataset": 2**70}, "dataset"),
        ({"params": {"min_funding_rate": "0.1"}}, "params.min_funding_rate"),
        ({"params": {"min_funding_rat": 0.1}}, "params.min_funding_rat"),
        ({"params": {"strategy_mode": "simple"}}, "params.strategy_mode"),
        ({"params": [1]}, "params"),
        ({"costs": {"commission_pct": -1}}, "costs.commission_pct"),
        ({"date_from": "2030-01-02", "date_to": "2030-01-01"}, "date_from"),
        ({"date_from": "soon"}, "date_from"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_carry_compare_request_is_a_400_naming_the_field(api, btc, change, field):
    before = model_counts()
    assert_refused(post_raw(api, "/api/carry/compare", _carry(btc, **change)), field, before)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_non_finite_carry_parameters_are_a_400_naming_the_field(api, btc, literal):
    raw = json.dumps(_carry(btc, params={"entry_threshold": 0.5}))
    raw = raw.replace("0.5", literal)
    before = model_counts()
    assert_refused(post_raw(api, "/api/carry/compare", raw), "params.entry_threshold", before)


def test_a_funding_dataset_is_not_a_carry_candle_dataset(api, btc):
    before = model_counts()
    body = _carry(btc, dataset=btc["funding"].id)
    assert_refused(post_raw(api, "/api/carry/compare", body), "dataset", before)


# --- the lab's launch and carry compare forms ----------------------------------------------------


def launch_form(btc, **change):
    form = {
        "name": "form job",
        "strategy": "sma_cross",
        "datasets": [str(btc["candles"].id)],
        "objective": "sharpe",
        "p_fast": "5, 10",
        "p_slow": "50",
        "p_sl_pct": "2",
        "p_rr": "2",
    }
    form.update(change)
    return {k: v for k, v in form.items() if v is not ...}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"p_sl_pct": "nan"}, "sl_pct"),
        ({"p_sl_pct": "inf"}, "sl_pct"),
        ({"p_sl_pct": "-inf"}, "sl_pct"),
        ({"p_sl_pct": "1e309"}, "sl_pct"),
        ({"p_fast": "abc"}, "fast"),
        ({"p_fast": "5.5"}, "fast"),
        ({"p_fast": ""}, "fast"),
        ({"p_fast": "5:50:0"}, "fast"),
        ({"p_fast": "5:50:-5"}, "fast"),
        ({"p_fast": "50:5:5"}, "fast"),
        ({"p_fast": "2:500:1", "p_slow": "3:2000:1", "p_sl_pct": "0.1:50:0.01"}, "parameter_grid"),
        ({"name": ...}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"description": "x" * 2001}, "description"),
        ({"strategy": "sma_crosss"}, "strategy"),
        ({"datasets": ...}, "datasets"),
        ({"datasets": ["x"]}, "datasets"),
        ({"datasets": ["987654"]}, "datasets"),
        ({"objective": "luck"}, "objective"),
        ({"commission_pct": "abc"}, "commission_pct"),
        ({"commission_pct": "nan"}, "costs.commission_pct"),
        ({"date_from": "2030-01-02", "date_to": "2030-01-01"}, "date_from"),
    ],
)
def test_a_bad_launch_form_is_a_400_naming_the_field(client, alice, btc, change, field):
    client.force_login(alice)
    before = model_counts()
    response = client.post("/lab/jobs/new/", launch_form(btc, **change))
    assert response.status_code == 400
    assert response.context["error_field"].endswith(field), response.context["error"]
    assert escape(response.context["error"]) in response.content.decode()
    assert model_counts() == before


@pytest.mark.parametrize(
    "change, field",
    [
        ({"dataset": ""}, "dataset"),
        ({"dataset": "x"}, "dataset"),
        ({"dataset": "987654"}, "dataset"),
        ({"min_funding_rate": "nan"}, "min_funding_rate"),
        ({"entry_threshold": "inf"}, "entry_threshold"),
        ({"entry_threshold": "1e309"}, "entry_threshold"),
        ({"exit_threshold": "abc"}, "exit_threshold"),
        ({"commission_pct": "-1"}, "commission_pct"),
        ({"slippage_pct": "-inf"}, "slippage_pct"),
        ({"date_from": "soon"}, "date_from"),
        ({"date_from": "2030-01-02", "date_to": "2030-01-01"}, "date_from"),
    ],
)
def test_a_bad_carry_compare_form_is_a_400_naming_the_field(client, alice, btc, change, field):
    client.force_login(alice)
    before = model_counts()
    form = {"dataset": str(btc["candles"].id), **change}
    response = client.post("/lab/carry/compare/", form)
    assert response.status_code == 400
    assert response.context["error_field"].endswith(field), response.context["error"]
    assert field in response.context["error"]
    assert escape(response.context["error"]) in response.content.decode()
    assert model_counts() == before


def test_an_oversized_form_is_a_413(client, alice, btc, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    client.force_login(alice)
    before = model_counts()
    for path in ("/lab/jobs/new/", "/lab/carry/compare/"):
        assert client.post(path, {"name": "x" * 10_000}).status_code == 413
    assert model_counts() == before


# --- the admin job form --------------------------------------------------------------------------

ADMIN_ADD = "/admin/optimization/optimizationjob/add/"


def admin_form(btc, **change):
    form = {
        "name": "from admin",
        "strategy": "sma_cross",
        "datasets": [btc["candles"].id],
        "parameter_grid": '{"fast": [5, 10]}',
        "objective": "sharpe",
        "costs": "{}",
        "description": "",
    }
    form.update(change)
    return {k: v for k, v in form.items() if v is not ...}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"parameter_grid": '{"sl_pct": [NaN]}'}, "parameter_grid"),
        ({"parameter_grid": '{"sl_pct": [Infinity]}'}, "parameter_grid"),
        ({"parameter_grid": '{"sl_pct": [1e309]}'}, "parameter_grid"),
        ({"parameter_grid": '{"fast": ["5"]}'}, "parameter_grid"),
        ({"parameter_grid": "[5, 10]"}, "parameter_grid"),
        ({"parameter_grid": "{not json"}, "parameter_grid"),
        ({"parameter_grid": '{"fast": {"start": 5, "stop": 50, "step": 0}}'}, "parameter_grid"),
        ({"parameter_grid": '{"fast": {"start": 50, "stop": 5, "step": 5}}'}, "parameter_grid"),
        ({"parameter_grid": '{"fsat": [5]}'}, "parameter_grid"),
        (
            {"parameter_grid": json.dumps({"sl_pct": HUGE, "rr": HUGE})},
            "parameter_grid",
        ),
        ({"parameter_grid": ...}, "parameter_grid"),
        ({"name": ...}, "name"),
        ({"strategy": "sma_crosss"}, "strategy"),
        ({"datasets": ["987654"]}, "datasets"),
        ({"datasets": ...}, "datasets"),
        ({"objective": "luck"}, "objective"),
        ({"costs": '{"commission_pct": NaN}'}, "costs"),
        ({"costs": '{"commission_pct": -1}'}, "costs"),
        ({"description": "x" * 2001}, "description"),
    ],
)
def test_a_bad_admin_job_form_is_a_400_naming_the_field(admin_client, btc, change, field):
    before = model_counts()
    response = admin_client.post(ADMIN_ADD, admin_form(btc, **change))
    assert response.status_code == 400, response.status_code
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert model_counts() == before


# --- manage.py import_candles ------------------------------------------------------------------

HEADER = "ts,open,high,low,close,volume\n"
ROW = "{ts},100,101,99,100.5,10\n"


def _csv(rows: list[str]) -> str:
    return HEADER + "".join(rows)


def _good_rows(n=5):
    return [ROW.format(ts=1_700_000_000 + 3600 * i) for i in range(n)]


IMPORT_CASES = {
    "empty file": ("", "file"),
    "header only": (HEADER, "rows"),
    "binary garbage": ("\x00\x01\x02garbage\xff", "file"),
    "missing column": ("ts,open,high,low,close\n1700000000,1,2,0.5,1\n", "volume"),
    "text in a price": (_csv([*_good_rows(2), "1700007200,abc,101,99,100,10\n"]), "open"),
    "nan price": (_csv([*_good_rows(2), "1700007200,NaN,101,99,100,10\n"]), "open"),
    "inf price": (_csv([*_good_rows(2), "1700007200,inf,101,99,100,10\n"]), "open"),
    "1e309 volume": (_csv([*_good_rows(2), "1700007200,100,101,99,100,1e309\n"]), "volume"),
    "negative price": (_csv([*_good_rows(2), "1700007200,100,101,-99,100,10\n"]), "low"),
    "high below low": (_csv([*_good_rows(2), "1700007200,100,90,99,95,10\n"]), "high"),
    "bad timestamp": (_csv([*_good_rows(2), "yesterday,100,101,99,100,10\n"]), "ts"),
    "unsorted": (_csv(list(reversed(_good_rows(3)))), "ts"),
    "ragged row": (_csv([*_good_rows(2), "1700007200,100,101\n"]), None),
    "too many fields": (_csv([*_good_rows(2), "1700007200,100,101,99,100,10,7,8\n"]), None),
}


@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_a_malformed_csv_names_the_problem_and_writes_nothing(tmp_path, settings, case):
    settings.DATASET_DIR = tmp_path / "datasets"
    text, column = IMPORT_CASES[case]
    path = tmp_path / "candles.csv"
    path.write_text(text, encoding="latin-1")
    before = model_counts()
    with pytest.raises(CommandError) as err:
        call_command("import_candles", str(path), symbol="BTC", timeframe="1h")
    if column:
        assert column in str(err.value), str(err.value)
    assert model_counts() == before
    assert not any(p.is_file() for p in (tmp_path / "datasets").rglob("*"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"symbol": "BTC", "timeframe": "7m"}, "timeframe"),
        ({"symbol": "", "timeframe": "1h"}, "symbol"),
        ({"symbol": "X" * 30, "timeframe": "1h"}, "symbol"),
    ],
)
def test_bad_import_options_are_named(tmp_path, options, message):
    path = tmp_path / "candles.csv"
    path.write_text(_csv(_good_rows()))
    before = model_counts()
    with pytest.raises(CommandError, match=message):
        call_command("import_candles", str(path), **options)
    assert model_counts() == before
    assert OptimizationJob.objects.count() == 0


# --- regressions found by fuzzing --------------------------------------------------------------


def test_an_unknown_api_path_is_a_json_404_in_the_error_shape(api):
    for path in ("/api/jobs/0.5/runs/", "/api/runs/-1/detail/", "/api/nothing-here/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["ok"] is False and "/api/docs/" in response.json()["error"]


def test_drf_errors_do_not_claim_a_detail_field(api, btc):
    body = post_raw(api, "/api/jobs/", "{not json").json()
    assert "field" not in body and "JSON parse error" in body["error"]
    assert "field" not in api.get("/api/jobs/987654/").json()


@pytest.mark.parametrize("query", ["metric=", "agg=", "metric=&agg=max"])
def test_an_empty_query_value_on_a_results_endpoint_is_a_400(api, alice, btc, query):
    job = make_job(alice, [btc["candles"]], grid={"fast": [5, 10]})
    for endpoint in ("heatmap", "sensitivity"):
        response = api.get(f"/api/jobs/{job.id}/{endpoint}/?{query}")
        assert response.status_code == 400, (endpoint, query)
        assert response.json()["field"] in ("metric", "agg")


def test_an_empty_page_number_is_a_400(api, btc):
    response = api.get("/api/jobs/?page=")
    assert response.status_code == 400 and response.json()["field"] == "page"


# --- apply to production, restore, risk configs (issue 7) ---------------------------------------


@pytest.fixture
def operator(alice):
    """alice with the apply and risk permissions (the gates below run after those)."""
    from django.contrib.auth.models import Permission

    alice.user_permissions.add(
        *Permission.objects.filter(codename__in=["apply_parameters", "change_riskconfig"])
    )
    client = APIClient()
    client.force_authenticate(type(alice).objects.get(pk=alice.pk))
    return client


@pytest.fixture
def finished_run(alice, btc):
    from apps.optimization.models import OptimizationRun
    from tests.factories import run_all_chunks

    job = make_job(alice, [btc["candles"]], grid={"fast": [5, 10], "slow": [50]})
    run_all_chunks(job)
    return OptimizationRun.objects.filter(job=job).first()


APPLY_CASES = [
    ('{"dry_run": "yes"}', "dry_run"),
    ('{"expected_version": -1}', "expected_version"),
    ('{"expected_version": NaN}', "expected_version"),
    ('{"expected_version": 1e309}', "expected_version"),
    ('{"expected_version": "2"}', "expected_version"),
    ('{"reason": ["a"]}', "reason"),
    ("[1, 2]", None),
]


@pytest.mark.parametrize("raw, field", APPLY_CASES)
def test_bad_apply_bodies_are_a_400_and_write_nothing(operator, finished_run, raw, field):
    before = model_counts()
    assert_refused(post_raw(operator, f"/api/runs/{finished_run.id}/apply/", raw), field, before)
    job = finished_run.job_id
    assert_refused(post_raw(operator, f"/api/jobs/{job}/apply_best/", raw), field, before)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"dataset": "1"}, "dataset"),
        ({"dataset": 987654}, "dataset"),
        ({"group": 5}, "group"),
        ({"group": "nope"}, "group"),
    ],
)
def test_bad_apply_best_slices_are_a_400(operator, finished_run, body, field):
    before = model_counts()
    response = post_raw(operator, f"/api/jobs/{finished_run.job_id}/apply_best/", body)
    assert_refused(response, field, before)


@pytest.mark.parametrize(
    "body, field, status",
    [
        ({"timeframe": "1h", "version": 1}, "symbol", 400),
        ({"symbol": "BTC", "timeframe": 5, "version": 1}, "timeframe", 400),
        ({"symbol": "BTC", "timeframe": "1h", "pattern": [], "version": 1}, "pattern", 400),
        ({"symbol": "BTC", "timeframe": "1h", "version": 1}, None, 404),  # nothing to restore
    ],
)
def test_bad_restore_bodies_write_nothing(operator, body, field, status):
    before = model_counts()
    response = post_raw(operator, "/api/strategies/sma_cross/config/restore", body)
    assert_refused(response, field, before, status=status)


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"max_risk_per_trade": NaN}', "max_risk_per_trade"),
        ('{"max_risk_per_trade": Infinity}', "max_risk_per_trade"),
        ('{"max_risk_per_underlying": 1e309}', "max_risk_per_underlying"),
        ('{"max_risk_per_trade": -0.01}', "max_risk_per_trade"),
        ('{"max_new_trades_per_day": "2"}', "max_new_trades_per_day"),
        ('{"enabled": null}', "enabled"),
        ('"lots"', None),
    ],
)
def test_bad_risk_configs_are_a_400_and_write_nothing(operator, raw, field):
    before = model_counts()
    response = operator.put(
        "/api/strategies/options_selector/risk", raw, content_type="application/json"
    )
    assert_refused(response, field, before)


# --- evaluation: Monte Carlo, walk-forward, stress, approval ------------------------------------


def _evaluation_paths(run) -> list[str]:
    return [
        "/api/jobs/monte_carlo/",
        "/api/jobs/walk_forward/",
        f"/api/runs/{run.id}/stress/",
        f"/api/strategies/{run.job.strategy}/approval/",
    ]


@pytest.mark.parametrize("raw", ["[1]", '"x"', "1", "null", "true", "[]"])
def test_an_evaluation_body_that_is_not_a_json_object_is_a_400(api, finished_run, raw):
    before = model_counts()
    for path in _evaluation_paths(finished_run):
        body = assert_refused(post_raw(api, path, raw), None, before)
        assert body["error"].startswith("the body must be a JSON object"), (path, body)
        assert "field" not in body, (path, body)


MONTE_CARLO_CASES = [
    ('{"sims": NaN}', "sims"),
    ('{"sims": Infinity}', "sims"),
    ('{"sims": 1e309}', "sims"),
    ('{"trades_per_sim": NaN}', "trades_per_sim"),
    ('{"seed": -Infinity}', "seed"),
    ('{"mode": NaN}', "mode"),
    ('{"name": 5}', "name"),
    ('{"name": ["a"]}', "name"),
    ('{"trades_per_sim": false}', "trades_per_sim"),
]


@pytest.mark.parametrize("extra, field", MONTE_CARLO_CASES)
def test_a_bad_monte_carlo_body_is_a_400_naming_the_field(api, finished_run, extra, field):
    before = model_counts()
    raw = f'{{"run": {finished_run.id}, {extra[1:]}'
    assert_refused(post_raw(api, "/api/jobs/monte_carlo/", raw), field, before)
    assert_refused(post_raw(api, "/api/jobs/monte_carlo/", '{"run": NaN}'), "run", before)


WALK_FORWARD_CASES = [
    ('{"train_frac": 1e309}', "train_frac"),
    ('{"train_frac": NaN}', "train_frac"),
    ('{"test_frac": Infinity}', "test_frac"),
    ('{"test_frac": -Infinity}', "test_frac"),
    ('{"train_frac": 0.9, "test_frac": 0.9}', "test_frac"),
    ('{"train_frac": 0, "test_frac": 1}', "train_frac"),
    ('{"train_frac": 0.5}', "test_frac"),  # 0.5 + the default 0.3
    ('{"n_splits": NaN}', "n_splits"),
    ('{"n_splits": 1e309}', "n_splits"),
    ('{"window": NaN}', "window"),
    ('{"name": 5}', "name"),
    ('{"strategy": "sma_cross"}', "strategy"),  # comes from the sweep
    ('{"costs": null}', "costs"),
]


@pytest.mark.parametrize("extra, field", WALK_FORWARD_CASES)
def test_a_bad_walk_forward_body_is_a_400_naming_the_field(api, finished_run, extra, field):
    before = model_counts()
    raw = f'{{"job": {finished_run.job_id}, {extra[1:]}'
    assert_refused(post_raw(api, "/api/jobs/walk_forward/", raw), field, before)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"train_frac": "NaN"}, "train_frac"),
        ({"train_frac": 0.9, "test_frac": 0.9}, "test_frac"),
        ({"costs": {"commission_pct": "NaN"}}, "costs"),
        ({"n_splits": True}, "n_splits"),
    ],
)
def test_a_bad_walk_forward_of_a_strategy_is_a_400_naming_the_field(api, btc, change, field):
    before = model_counts()
    body = {
        "strategy": "sma_cross",
        "dataset": btc["candles"].id,
        "parameter_grid": {"fast": [5], "slow": [50]},
    }
    raw = json.dumps({**body, **change}).replace('"NaN"', "NaN")
    assert_refused(post_raw(api, "/api/jobs/walk_forward/", raw), field, before)


@pytest.mark.parametrize("raw", ['{"objective": NaN}', '{"objective": 0}', '{"objective": []}'])
def test_a_bad_stress_objective_is_a_400_naming_it(api, finished_run, raw):
    before = model_counts()
    response = post_raw(api, f"/api/runs/{finished_run.id}/stress/", raw)
    assert_refused(response, "objective", before)


@pytest.mark.parametrize("raw", ['{"run": NaN}', '{"run": 1e309}', '{"run": true}', "{}"])
def test_a_bad_approval_run_is_a_400_naming_it(api, finished_run, raw):
    before = model_counts()
    path = f"/api/strategies/{finished_run.job.strategy}/approval/"
    assert_refused(post_raw(api, path, raw), "run", before)


def test_the_evaluation_bodies_are_documented(client):
    schema = client.get("/api/schema/?format=json").json()
    operations = {
        "/api/jobs/monte_carlo/": ("run", "sims", "trades_per_sim", "mode", "seed"),
        "/api/jobs/walk_forward/": ("job", "strategy", "n_splits", "train_frac", "test_frac"),
        "/api/runs/{id}/stress/": ("objective",),
        "/api/strategies/{key}/approval/": ("run",),
    }
    components = schema["components"]["schemas"]
    for path, fields in operations.items():
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert set(fields) <= set(components[ref]["properties"]), (path, components[ref])


# --- issue 14: deep JSON, NUL characters, Unicode digits, format suffixes ----------------------


def _json_operations(client, ids) -> list[tuple[str, str]]:
    """(method, path) of every operation of the schema that takes a JSON body, ids filled in
    with real objects: new endpoints are covered without editing this list."""
    paths = client.get("/api/schema/?format=json").json()["paths"]
    found = []
    for template, item in paths.items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                kind = "run" if template.startswith("/api/runs/") else "job"
                path = template.replace("{id}", str(ids[kind])).replace("{key}", "sma_cross")
                found.append((method, path))
    return found


def _send(client, method: str, path: str, raw: str):
    return getattr(client, method)(path, raw, content_type="application/json")


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(operator, finished_run, depth):
    """100,000 levels made Python's JSON decoder raise RecursionError (a 500) on every
    endpoint; 40 levels parsed, then waited for the first recursive walk to fail."""
    ids = {"run": finished_run.id, "job": finished_run.job_id}
    operations = _json_operations(operator, ids)
    assert len(operations) >= 12, operations  # jobs, evaluations, tools, apply, risk, ...
    raw = "[" * depth + "]" * depth
    before = model_counts()
    for method, path in operations:
        body = assert_refused(_send(operator, method, path, raw), None, before)
        assert "nested more than 32 levels" in body["error"], (method, path, body)
    nested = '{"name": "deep", "parameter_grid": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    body = assert_refused(_send(operator, "post", "/api/jobs/", nested), "parameter_grid", before)
    assert "parameter_grid.a.a" in body["error"]


NUL = "\u0000"
NUL_BODIES = {
    "Monte Carlo name": ("/api/jobs/monte_carlo/", {"name": f"a{NUL}b"}, "name"),
    "walk-forward name": ("/api/jobs/walk_forward/", {"name": f"a{NUL}b"}, "name"),
    "a key": ("/api/jobs/monte_carlo/", {f"x{NUL}": 1}, "x"),
    "job description": ("/api/jobs/", {"description": NUL}, "description"),
    "a grid value": (
        "/api/jobs/",
        {"parameter_grid": {"fast": [f"5{NUL}"]}},
        "parameter_grid.fast",
    ),
}


@pytest.mark.parametrize("case", list(NUL_BODIES))
def test_a_nul_character_in_a_json_body_is_a_400_naming_the_field(api, finished_run, case):
    """PostgreSQL text cannot hold NUL (psycopg raised DataError, a 500); SQLite stored it."""
    path, change, field = NUL_BODIES[case]
    base = {
        "/api/jobs/monte_carlo/": {"run": finished_run.id},
        "/api/jobs/walk_forward/": {"job": finished_run.job_id},
        "/api/jobs/": _job(finished_run.dataset),
    }[path]
    before = model_counts()
    body = assert_refused(post_raw(api, path, {**base, **change}), field, before)
    assert "NUL character" in body["error"] and body["field"] == field, body


@pytest.mark.parametrize("endpoint", ["config", "config/history"])
@pytest.mark.parametrize(
    "query, field",
    [
        ({"symbol": f"BT{NUL}C", "timeframe": "1h"}, "symbol"),
        ({"symbol": "BTC", "timeframe": "1h", "pattern": NUL}, "pattern"),
        ({"symbol": "BTC", "timeframe": "1h", "pattern": ["a", f"b{NUL}"]}, "pattern"),
    ],
)
def test_a_nul_character_in_a_query_is_a_400_naming_it(api, endpoint, query, field):
    before = model_counts()
    response = api.get(f"/api/strategies/sma_cross/{endpoint}", query)
    body = assert_refused(response, field, before)
    assert body["field"] == field and "NUL character" in body["error"]


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_nul_character_in_the_launch_form_is_a_400_page_naming_it(client, alice, btc, field):
    client.force_login(alice)
    before = model_counts()
    response = client.post("/lab/jobs/new/", launch_form(btc, **{field: f"x{NUL}y"}))
    assert response.status_code == 400
    assert response.context["error_field"] == field
    assert f"{field} contains a NUL character" in response.content.decode()
    assert model_counts() == before


def test_a_nul_character_on_the_datasets_page_and_in_an_admin_search_is_a_400(
    client, admin_client, alice, btc
):
    client.force_login(alice)
    before = model_counts()
    response = client.post("/lab/datasets/", {"step": "save", "token": "t", "symbol": f"B{NUL}"})
    assert response.status_code == 400 and response.context["error_field"] == "symbol"
    response = admin_client.get("/admin/optimization/optimizationjob/", {"q": f"a{NUL}"})
    assert response.status_code == 400 and response.context["error_field"] == "q"
    assert model_counts() == before


SUPERSCRIPT_TWO = "\u00b2"  # "²": str.isdigit() says yes, int() refuses it
ARABIC_TWELVE = "\u0661\u0662"  # "١٢": int() reads 12, no client means it


@pytest.mark.parametrize("digits", [SUPERSCRIPT_TWO, ARABIC_TWELVE, "9" * 5000])
def test_unicode_digits_in_an_api_query_are_a_400_naming_it(api, finished_run, digits):
    """Each was isdigit() then int(): "²" raised ValueError (a 500), so did 5,000 nines
    (Python's int() limit); int() alone read "١٢" as 12."""
    job, run = finished_run.job_id, finished_run.id
    before = model_counts()
    for path, field in [
        (f"/api/jobs/{job}/sensitivity/", "run"),
        (f"/api/runs/{run}/detail/", "points"),
        (f"/api/jobs/{job}/heatmap/", "dataset"),
        ("/api/jobs/compare/", "ids"),
        (f"/api/jobs/{job}/runs/", "dataset"),
        (f"/api/jobs/{job}/best/", "limit"),
        ("/api/jobs/", "page_size"),
    ]:
        value = f"{digits},{job}" if field == "ids" else digits
        body = assert_refused(api.get(path, {field: value}), field, before)
        assert body["field"] == field, (path, body)


def test_unicode_digits_on_the_lab_pages_are_a_400(client, alice, btc, finished_run):
    client.force_login(alice)
    job = finished_run.job_id
    before = model_counts()
    response = client.post("/lab/jobs/new/", launch_form(btc, datasets=[SUPERSCRIPT_TWO]))
    assert response.status_code == 400 and response.context["error_field"] == "datasets"
    response = client.post("/lab/carry/compare/", {"dataset": SUPERSCRIPT_TWO})
    assert response.status_code == 400 and response.context["error_field"] == "dataset"
    response = client.get(f"/lab/jobs/{job}/heatmap/", {"dataset": SUPERSCRIPT_TWO})
    assert response.status_code == 400 and "dataset" in response.context["error"]
    response = client.get("/lab/compare/", {"ids": f"{SUPERSCRIPT_TWO},{job}"})
    assert response.status_code == 400 and "ids" in response.context["error"]
    assert model_counts() == before


def test_unicode_digits_as_the_expected_version_of_an_apply_are_refused(
    client, alice, finished_run
):
    from django.contrib.auth.models import Permission

    alice.user_permissions.add(Permission.objects.get(codename="apply_parameters"))
    client.force_login(alice)
    before = model_counts()
    url = f"/lab/jobs/{finished_run.job_id}/runs/{finished_run.id}/apply/"
    response = client.post(url, {"expected_version": SUPERSCRIPT_TWO, "reason": "x"})
    assert response.status_code == 400
    assert "expected_version" in response.context["error"]
    assert model_counts() == before


@pytest.mark.parametrize(
    "method, action", [("post", "cancel"), ("post", "rerun"), ("get", "best"), ("get", "runs")]
)
def test_a_format_suffix_route_is_a_json_404(api, finished_run, method, action):
    """/api/jobs/{id}/cancel.json reached the action with a "format" argument it does not take
    (a TypeError for every user); the API answers JSON only, so no suffix route is served."""
    before = model_counts()
    response = getattr(api, method)(f"/api/jobs/{finished_run.job_id}/{action}.json")
    body = assert_refused(response, None, before, status=404)
    assert "drop the format suffix" in body["error"]
    assert api.get(f"/api/jobs/{finished_run.job_id}/?format=json").status_code == 200


def test_a_description_of_2000_characters_is_kept_and_the_forms_say_the_cap(
    api, client, admin_client, alice, btc
):
    response = post_raw(api, "/api/jobs/", _job(btc["candles"], description="x" * 2000))
    assert response.status_code == 201 and len(response.json()["description"]) == 2000
    client.force_login(alice)
    for page in (client.get("/lab/jobs/new/"), admin_client.get(ADMIN_ADD)):
        html = page.content.decode()
        assert 'name="description"' in html and 'maxlength="2000"' in html
    schema = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schema["JobCreateRequest"]["properties"]["description"]["maxLength"] == 2000


@pytest.mark.parametrize(
    "query, field",
    [("ordering=--sharpe", "ordering"), ("ordering=-", "ordering"), ("status=", "status")],
)
def test_a_bad_run_filter_is_a_400_naming_it(api, finished_run, query, field):
    before = model_counts()
    response = api.get(f"/api/jobs/{finished_run.job_id}/runs/?{query}")
    body = assert_refused(response, field, before)
    assert body["field"] == field


def test_an_undeclared_field_in_a_request_body_is_a_400_naming_it(
    operator, finished_run, btc, client
):
    """Every request body takes only the fields its schema declares (additionalProperties:
    false): a typo such as "dry_rn" silently applied for real before."""
    run, job = finished_run.id, finished_run.job_id
    cases = [
        ("post", f"/api/runs/{run}/apply/", {"dry_rn": True}, "dry_rn"),
        ("post", f"/api/jobs/{job}/apply_best/", {"dry_run": True, "datset": 1}, "datset"),
        ("post", "/api/strategies/sma_cross/config/restore", {"versoin": 1}, "versoin"),
        ("post", f"/api/runs/{run}/stress/", {"objectve": "sharpe"}, "objectve"),
        ("post", "/api/strategies/sma_cross/approval/", {"run": run, "x": 1}, "x"),
        ("post", "/api/jobs/monte_carlo/", {"run": run, "simz": 5}, "simz"),
        ("post", "/api/jobs/walk_forward/", {"job": job, "n_split": 3}, "n_split"),
        ("post", "/api/jobs/", {**_job(btc["candles"]), "objectiv": "sortino"}, "objectiv"),
        ("put", "/api/strategies/sma_cross/risk", {"enabeld": False}, "enabeld"),
        ("post", "/api/token/", {"username": "a", "password": "b", "otp": 1}, "otp"),
    ]
    before = model_counts()
    for method, path, body, field in cases:
        response = _send(operator, method, path, json.dumps(body))
        answer = assert_refused(response, field, before)
        assert answer["field"] == field and f"'{field}'" in answer["error"], (path, answer)
    assert (
        "did you mean 'dry_run'"
        in _send(operator, "post", f"/api/runs/{run}/apply/", '{"dry_rn": true}').json()["error"]
    )
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    bodies = [c for name, c in schema.items() if name.endswith("Request")]
    assert len(bodies) >= 12 and all(c["additionalProperties"] is False for c in bodies)
