"""The synthetic tools' API: answers, every error case, authentication, the metric list."""

import json
import logging

import pytest

from apps.lab import synthetic_tools as synthetic
from backtestlab.engine.options_selector_rules import SELECTOR_RULES
from backtestlab.engine.synthetic import ENVIRONMENT_METRICS

pytestmark = pytest.mark.django_db

HEATMAP = {
    "underlying": "BTC",
    "x_metric": "vrp_30d",
    "y_metric": "adx_14d",
    "horizon_days": 365,
    "decision_interval_days": 1,
    "x_start": 5,
    "x_step": 5,
    "x_points": 5,
    "y_start": 15,
    "y_step": 5,
    "y_points": 5,
}
SCAN = {"underlying": "BTC", "param": "min_vrp_30d", "start": -5, "step": 2.5, "points": 8}
SELECTOR_HEATMAP = {
    "underlying": "BTC",
    "x_param": "min_vrp_30d",
    "y_param": "max_adx_14d",
    "x_start": -5,
    "x_step": 2.5,
    "x_points": 4,
    "y_start": 15,
    "y_step": 5,
    "y_points": 3,
}


@pytest.fixture
def api(client, alice):
    client.force_login(alice)

    def post(path, body):
        raw = body if isinstance(body, str) else json.dumps(body)
        return client.post(path, raw, content_type="application/json")

    return post


def assert_rejected(response, field):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["ok"] is False and field in body["error"], body
    assert body.get("field") == field, body
    return body["error"]


# --- answers -------------------------------------------------------------------------------


def test_the_environment_heatmap_answers_grid_labels_and_coverage(api):
    body = api("/api/environment_heatmap", HEATMAP).json()
    assert body["ok"] is True
    for key in ("underlying", "x_metric", "y_metric", "horizon_days", "decision_interval_days"):
        assert body[key] == HEATMAP[key]
    assert body["x_labels"] == [5, 10, 15, 20, 25] and body["y_labels"] == [15, 20, 25, 30, 35]
    assert len(body["grid"]) == 5 and all(len(row) == 5 for row in body["grid"])
    assert body["total_steps"] == 365
    assert 0 < body["in_grid_steps"] <= 365
    assert body["coverage_pct"] == round(body["in_grid_steps"] / 365 * 100, 1)
    assert abs(sum(map(sum, body["grid"])) - 100) <= 0.05 * 25


def test_the_environment_heatmap_agrees_with_the_engine_on_the_cached_universe(api):
    body = api("/api/environment_heatmap", {**HEATMAP, "decision_interval_days": 7}).json()
    env = synthetic.environment_series("BTC")
    x = env.metrics["vrp_30d"][:365:7]
    y = env.metrics["adx_14d"][:365:7]
    inside = (x >= 5) & (x < 30) & (y >= 15) & (y < 40)
    assert body["total_steps"] == len(x) == 53
    assert body["in_grid_steps"] == int(inside.sum())


def test_the_path_with_a_trailing_slash_answers_too(api):
    assert api("/api/environment_heatmap/", HEATMAP).json()["ok"] is True


def test_labels_reach_the_client_without_float_noise(api):
    response = api("/api/environment_heatmap", {**HEATMAP, "x_start": 0.1, "x_step": 0.2})
    assert response.json()["x_labels"] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert "0.30000000000000004" not in response.content.decode()


def test_the_metric_list_is_served_with_suggested_grids_and_threshold_bounds(api, client):
    body = client.get("/api/environment_metrics").json()
    assert [m["key"] for m in body["metrics"]] == list(ENVIRONMENT_METRICS)
    assert [m["label"] for m in body["metrics"]] == list(ENVIRONMENT_METRICS.values())
    assert all(m["suggested"]["points"] <= 20 for m in body["metrics"])
    assert [t["param"] for t in body["thresholds"]] == [r.param for r in SELECTOR_RULES]
    vrp = body["thresholds"][0]
    assert (vrp["default"], vrp["min"], vrp["max"]) == (5.0, -50.0, 100.0)
    assert body["horizon_days"] == {"default": 365, "min": 1, "max": 3650}


def test_every_suggested_grid_is_accepted_by_its_tool(api):
    catalogue = synthetic.catalogue()
    for m in catalogue["metrics"]:
        g = m["suggested"]
        body = {**HEATMAP, "x_metric": m["key"], "x_start": g["start"], "x_step": g["step"]}
        response = api("/api/environment_heatmap", {**body, "x_points": g["points"]})
        assert response.status_code == 200, response.json()
        answer = response.json()
        assert answer["ok"] is True and answer["x_metric"] == m["key"]
        assert len(answer["x_labels"]) == g["points"] and answer["x_labels"][0] == g["start"]
        assert all(len(row) == g["points"] for row in answer["grid"])
    for t in catalogue["thresholds"]:
        g = t["suggested"]
        response = api("/api/selector_scan", {**SCAN, "param": t["param"], **g})
        assert response.status_code == 200, response.json()
        answer = response.json()
        assert answer["ok"] is True and answer["thresholds"][t["param"]] is None  # the swept one
        assert len(answer["values"]) == len(answer["allowed_pct"]) == g["points"]
        assert answer["values"][0] == g["start"]


def test_a_selector_scan_over_min_vrp_never_increases(api):
    body = api("/api/selector_scan", {**SCAN, "start": -10, "step": 1, "points": 30}).json()
    pct = body["allowed_pct"]
    assert body["ok"] is True and len(pct) == 30 and body["values"][:3] == [-10, -9, -8]
    assert all(a >= b for a, b in zip(pct, pct[1:], strict=False))
    assert body["thresholds"]["min_vrp_30d"] is None  # the swept one
    assert body["thresholds"]["min_iv_rank_6m"] == 30.0  # a default


def test_a_one_point_scan_equals_the_selector_heatmap_cell_with_the_same_thresholds(api):
    fixed = {"min_rsi_14d": None, "min_iv_rank_6m": 20}
    grid = api("/api/selector_heatmap", {**SELECTOR_HEATMAP, "thresholds": fixed}).json()
    assert grid["ok"] is True and len(grid["grid"]) == 3
    for j, y_value in enumerate(grid["y_labels"]):
        for i, x_value in enumerate(grid["x_labels"]):
            scan = api(
                "/api/selector_scan",
                {
                    **SCAN,
                    "start": x_value,
                    "points": 1,
                    "thresholds": {**fixed, "max_adx_14d": y_value},
                },
            ).json()
            assert scan["allowed_pct"] == [grid["grid"][j][i]]


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"x_step": 0}, "x_step"),
        ({"y_step": -5}, "y_step"),
        ({"x_metric": "vrp"}, "x_metric"),
        ({"y_metric": "max_adx_14d"}, "y_metric"),
        ({"x_metric": 3}, "x_metric"),
        ({"underlying": "XRP"}, "underlying"),
        ({"x_points": 1}, "x_points"),
        ({"y_points": 21}, "y_points"),
        ({"x_points": 5.5}, "x_points"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 3651}, "horizon_days"),
        ({"decision_interval_days": 31}, "decision_interval_days"),
        ({"x_start": True}, "x_start"),
        ({"x_start": "5"}, "x_start"),
        ({"x_step": None}, "x_step"),
        ({"y_start": [1]}, "y_start"),
        ({"horizon_days": "365"}, "horizon_days"),
        ({"x_points": False}, "x_points"),
        ({"x_start": 10**400}, "x_start"),
        ({"x_stat": 5}, "x_stat"),
    ],
)
def test_a_bad_environment_heatmap_field_is_a_400_naming_it(api, change, field):
    assert_rejected(api("/api/environment_heatmap", {**HEATMAP, **change}), field)


@pytest.mark.parametrize("field", ["underlying", "x_metric", "y_metric", "x_start", "y_points"])
def test_a_missing_field_is_a_400_naming_it(api, field):
    body = {k: v for k, v in HEATMAP.items() if k != field}
    assert "required" in assert_rejected(api("/api/environment_heatmap", body), field)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"])
def test_non_finite_numbers_in_the_json_body_are_a_400_naming_the_field(api, literal):
    raw = json.dumps({**HEATMAP, "x_start": 0}).replace('"x_start": 0', f'"x_start": {literal}')
    message = assert_rejected(api("/api/environment_heatmap", raw), "x_start")
    assert "finite" in message


def test_the_seeds_minimal_request_gets_the_defaults_and_a_y_by_x_grid(api):
    """The seed's light test: no horizon or interval, 5 x columns by 4 y rows."""
    body = {k: v for k, v in HEATMAP.items() if k not in ("horizon_days", "decision_interval_days")}
    response = api("/api/environment_heatmap", {**body, "y_points": 4})
    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is True
    assert (answer["horizon_days"], answer["decision_interval_days"]) == (365, 1)
    assert answer["x_labels"] == [5, 10, 15, 20, 25] and answer["y_labels"] == [15, 20, 25, 30]
    assert len(answer["grid"]) == 4 and all(len(row) == 5 for row in answer["grid"])


def test_a_step_too_small_to_separate_the_labels_is_a_400(api):
    assert_rejected(api("/api/environment_heatmap", {**HEATMAP, "x_step": 1e-12}), "x_step")


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(api, raw):
    response = api("/api/environment_heatmap", raw)
    assert response.status_code == 400 and response.json()["ok"] is False
    assert "request body" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "base", "change", "field"),
    [
        ("/api/selector_scan", SCAN, {"param": "min_vrp"}, "param"),
        ("/api/selector_scan", SCAN, {"step": 0}, "step"),
        ("/api/selector_scan", SCAN, {"points": 0}, "points"),
        ("/api/selector_scan", SCAN, {"points": 51}, "points"),
        ("/api/selector_scan", SCAN, {"start": -60}, "start"),
        ("/api/selector_scan", SCAN, {"start": 90, "step": 5}, "step"),
        ("/api/selector_scan", SCAN, {"start": float("nan")}, "start"),
        ("/api/selector_scan", SCAN, {"thresholds": {"min_iv_rank": 3}}, "thresholds.min_iv_rank"),
        (
            "/api/selector_scan",
            SCAN,
            {"thresholds": {"max_adx_14d": "25"}},
            "thresholds.max_adx_14d",
        ),
        ("/api/selector_scan", SCAN, {"thresholds": [1]}, "thresholds"),
        ("/api/selector_heatmap", SELECTOR_HEATMAP, {"y_param": "min_vrp_30d"}, "y_param"),
        ("/api/selector_heatmap", SELECTOR_HEATMAP, {"x_step": -1}, "x_step"),
        ("/api/selector_heatmap", SELECTOR_HEATMAP, {"y_points": 30}, "y_points"),
        (
            "/api/selector_heatmap",
            SELECTOR_HEATMAP,
            {"thresholds": {"min_rsi_14d": 200}},
            "thresholds.min_rsi_14d",
        ),
    ],
)
def test_a_bad_selector_request_is_a_400_naming_the_field(api, path, base, change, field):
    assert_rejected(api(path, json.dumps({**base, **change})), field)  # NaN as a literal


def test_an_unexpected_failure_is_a_500_with_the_error_shape_and_a_log_entry(
    api, monkeypatch, caplog
):
    def broken(underlying, seed=0):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synthetic, "environment_series", broken)
    with caplog.at_level(logging.ERROR, logger="backtestlab.api"):
        response = api("/api/environment_heatmap", HEATMAP)
    assert response.status_code == 500
    assert response.json() == {
        "ok": False,
        "error": "internal error (RuntimeError); it has been logged",
    }
    assert any("disk on fire" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/environment_heatmap"),
        ("post", "/api/selector_scan"),
        ("post", "/api/selector_heatmap"),
        ("get", "/api/environment_metrics"),
    ],
)
def test_an_anonymous_caller_is_refused(client, method, path):
    response = getattr(client, method)(path, HEATMAP, content_type="application/json")
    assert response.status_code == 403  # session auth: no WWW-Authenticate challenge, so 403
    assert response.json() == {
        "ok": False,
        "error": "Authentication credentials were not provided.",
    }


def test_a_logged_in_outsider_may_use_the_tools(client, charlie):
    client.force_login(charlie)
    response = client.get("/api/environment_metrics")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(synthetic.catalogue()))  # the whole list
    heatmap = client.post("/api/environment_heatmap", HEATMAP, content_type="application/json")
    assert heatmap.status_code == 200 and heatmap.json()["total_steps"] == 365


def test_the_schema_documents_the_four_endpoints(api, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ("environment_heatmap", "selector_scan", "selector_heatmap"):
        operation = paths[f"/api/{path}"]["post"]
        assert {"200", "400", "500"} <= set(operation["responses"])
        assert "requestBody" in operation
    assert "get" in paths["/api/environment_metrics"]
    assert "/api/environment_heatmap/" not in paths
    request = schema["components"]["schemas"]["EnvironmentHeatmapRequest"]
    assert set(request["required"]) == {
        "underlying",
        "x_metric",
        "y_metric",
        "x_start",
        "x_step",
        "x_points",
        "y_start",
        "y_step",
        "y_points",
    }
