"""An unbounded ratio (a profit factor with no losing trade, a Sortino with no down bar, a
Calmar with no drawdown: ``+inf``) is stored, ranked above every finite value, shown as "∞"
and written as ``"Infinity"`` in strict JSON; only NaN means "undefined" (null, never best)."""

from __future__ import annotations

import json
import math

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.optimization.gateway import json_safe
from apps.optimization.models import OptimizationRun
from apps.optimization.selectors.heatmap import heatmap_options, job_heatmap
from apps.optimization.selectors.jobs import job_best_runs
from apps.optimization.selectors.sensitivity import job_sensitivity
from apps.optimization.services.sweeps import metric_value, sweep_outcome
from apps.strategies.services.apply import apply_plan
from backtestlab.renderers import json_clean, json_float, json_number
from tests.results_data import job_with_runs

pytestmark = pytest.mark.django_db

INF = math.inf
# grid_index = 4 * fast + 2 * slow + sl over fast [5, 10, 20] × slow [30, 60] × sl_pct [1, 2].
UNBOUNDED = {0: INF, 7: INF}
UNDEFINED = {3}


def pf_metrics(d, gi, params):
    pf = UNBOUNDED.get(gi, 1.0 + gi / 10)
    return {
        "profit_factor": None if gi in UNDEFINED else pf,
        "sortino": None,  # NaN: undefined
        "sharpe": 0.1 * gi,
        "win_rate": 50.0,
    }


@pytest.fixture
def pf_job(alice, datasets):
    return job_with_runs(alice, datasets[:1], pf_metrics, objective="profit_factor")


def strict(content: bytes):
    """JSON as a browser's JSON.parse reads it: a bare NaN/Infinity token is an error."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(content, parse_constant=refuse)


def by_gi(job, gi) -> OptimizationRun:
    return OptimizationRun.objects.get(job=job, grid_index=gi)


def test_a_metric_is_stored_as_computed_except_nan():
    assert metric_value("profit_factor", INF) == INF
    assert metric_value("profit_factor", math.nan) is None
    assert metric_value("profit_factor", 2.5) == 2.5
    assert metric_value("n_trades", 31.0) == 31 and isinstance(metric_value("n_trades", 31.0), int)


def test_json_numbers_round_trip():
    assert [json_number(v) for v in (INF, -INF, math.nan, 1.5)] == [
        "Infinity", "-Infinity", None, 1.5,
    ]  # fmt: skip
    assert [json_float(v) for v in ("Infinity", "-Infinity", None, 1.5)] == [INF, -INF, None, 1.5]
    assert json_clean({"a": [INF, (math.nan, 2.0)], "b": "x"}) == {
        "a": ["Infinity", [None, 2.0]], "b": "x",
    }  # fmt: skip


def test_unbounded_runs_are_kept_and_ranked_first(pf_job):
    assert by_gi(pf_job, 0).profit_factor == INF
    assert by_gi(pf_job, 3).profit_factor is None
    ranked = job_best_runs(job=pf_job, limit=12)
    assert [r.grid_index for r in ranked[:3]] == [0, 7, 11]  # ∞, ∞ (ties: run id), then 2.1
    assert 3 not in [r.grid_index for r in ranked]  # undefined: never ranked
    assert len(ranked) == 11


def test_the_jobs_best_params_hold_infinity_as_strict_json(pf_job, alice):
    error, best_params, best = sweep_outcome(pf_job)
    assert error == "" and best.grid_index == 0
    assert best_params["overall"]["value"] == "Infinity"
    pf_job.best_params = best_params
    pf_job.save()  # a JSON column: a bare Infinity token would be refused
    pf_job.refresh_from_db()
    assert pf_job.best_params["overall"]["value"] == "Infinity"
    client = Client()
    client.force_login(alice)
    page = client.get("/lab/").content.decode()
    assert "∞" in page and "Infinity" not in page and "inf<" not in page


def test_the_api_writes_infinity_and_null_in_strict_json(pf_job, alice):
    client = APIClient()
    client.force_authenticate(alice)
    resp = client.get(f"/api/jobs/{pf_job.id}/runs/?ordering=-profit_factor&page_size=3")
    assert resp.status_code == 200
    rows = strict(resp.content)["results"]
    assert [r["profit_factor"] for r in rows] == ["Infinity", "Infinity", 2.1]
    assert rows[0]["sortino"] is None and rows[0]["sharpe"] == 0.0
    export = client.get(f"/api/jobs/{pf_job.id}/export/?format=json")
    body = strict(b"".join(export.streaming_content))
    values = {r["run_id"]: r["profit_factor"] for r in body}
    assert values[by_gi(pf_job, 7).id] == "Infinity"
    assert values[by_gi(pf_job, 3).id] is None


def test_pages_show_infinity_as_the_symbol_and_star_it(pf_job, alice):
    client = Client()
    client.force_login(alice)
    page = client.get(f"/lab/jobs/{pf_job.id}/").content.decode()
    best = page[page.index('id="best-table"') :]
    best = best[: best.index("</table>")]
    assert best.count('<td class="objective">∞</td>') == 2
    heat = client.get(
        f"/lab/jobs/{pf_job.id}/heatmap/?x=fast&y=slow&metric=profit_factor&agg=max"
    ).content.decode()
    assert "∞*" in heat  # the (fast 5, slow 30) cell holds run 0 (∞) and is the best
    assert ">inf" not in heat and "Infinity" not in heat
    run = by_gi(pf_job, 0)
    sens = client.get(f"/lab/jobs/{pf_job.id}/sensitivity/?metric=profit_factor").content
    assert "∞" in sens.decode()
    data = job_sensitivity(job=pf_job, metric="profit_factor", run=run)
    drops = {p["name"]: p["neighbour_drop_pct"] for p in data["parameters"]}
    # ∞ next to finite values: the whole value is lost (the limit of (∞ - x) / ∞).
    assert drops == {"fast": 100.0, "slow": 100.0, "sl_pct": 100.0}


def test_applying_an_unbounded_run_is_better_than_any_finite_production_value(pf_job):
    plan = apply_plan(run=by_gi(pf_job, 0))
    gate = next(c for c in plan.checks if c["gate"] == "improvement")
    assert plan.new_value == INF and plan.improvement_pct is None
    assert math.isfinite(plan.old_value)  # the defaults on this data lose some trades
    assert gate["ok"] is True
    assert gate["detail"] == (f"profit_factor ∞ vs {plan.old_value:.4g} (no % improvement defined)")
    assert plan.new_metrics["profit_factor"] == INF
    answer = json_safe(plan.as_dict())  # what the API and the audit trail keep
    assert answer["new_value"] == answer["new_metrics"]["profit_factor"] == "Infinity"


@pytest.mark.parametrize(
    "agg, first_row",
    [
        # (fast 5, slow 30) holds gi 0 (∞) and gi 1 (1.1); (5, 60) gi 2 (1.2) and gi 3
        # (undefined, left out of the aggregate)
        ("max", [math.inf, 1.2]),
        ("mean", [math.inf, 1.2]),
        ("median", [math.inf, 1.2]),  # percentile_cont between 1.1 and ∞
        ("min", [1.1, 1.2]),
    ],
)
def test_heatmap_aggregates_with_an_unbounded_value(pf_job, agg, first_row):
    options = heatmap_options(
        pf_job, {"x": "slow", "y": "fast", "agg": agg, "metric": "profit_factor"}
    )
    hm = job_heatmap(job=pf_job, options=options)
    assert [c["value"] for c in hm.cells[0]] == pytest.approx(first_row)
    if agg != "min":
        assert (hm.best["xi"], hm.best["yi"]) == (0, 0) and hm.best["value"] == math.inf
