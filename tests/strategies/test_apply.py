"""Apply to production: one service behind the page, the API and the admin; its gates."""

import pytest
from rest_framework.test import APIClient

from apps.strategies.models import ParameterChange, StrategyConfig
from apps.strategies.services import apply
from apps.strategies.services.apply import apply_plan, run_apply_to_production
from backtestlab.errors import ApplicationError
from tests.strategies.conftest import approve, grant, ranked

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_an_approved_better_run_is_applied_as_the_next_version(alice, sweep, weak_production):
    alice = grant(alice)
    approve("PILOT")
    best = ranked(sweep)[0]
    answer = run_apply_to_production(
        run=best, user=alice, dry_run=False, reason="weekly", expected_version=1
    )
    assert answer["applied"] and answer["version"] == 2
    current = StrategyConfig.objects.get(strategy="sma_cross", symbol="BTC", version=2)
    assert {k: current.params[k] for k in best.params} == best.params
    change = ParameterChange.objects.get()
    assert (change.from_version, change.to_version, change.kind) == (1, 2, "apply")
    assert change.user == alice and change.run == best and change.job == sweep
    assert change.old_params == weak_production.params | change.old_params  # defaults filled in
    assert change.reason == "weekly" and change.improvement_pct >= 5 and not change.dry_run


def test_a_strategy_still_in_research_is_refused_and_nothing_is_written(
    alice, sweep, weak_production
):
    alice = grant(alice)
    approve("RESEARCH")
    with pytest.raises(ApplicationError) as exc:
        run_apply_to_production(run=ranked(sweep)[0], user=alice, dry_run=False)
    assert exc.value.field == "stage" and "RESEARCH" in exc.value.message
    assert StrategyConfig.objects.count() == 1 and ParameterChange.objects.count() == 0


def test_a_strategy_never_evaluated_is_refused(alice, sweep, weak_production):
    with pytest.raises(ApplicationError, match="not been evaluated"):
        run_apply_to_production(run=ranked(sweep)[0], user=grant(alice), dry_run=False)


def test_the_allowed_stages_are_configurable(alice, sweep, weak_production, settings):
    settings.BACKTESTLAB = {**settings.BACKTESTLAB, "APPLY_ALLOWED_STAGES": ("PRODUCTION",)}
    approve("PILOT")
    with pytest.raises(ApplicationError, match="allowed: PRODUCTION"):
        run_apply_to_production(run=ranked(sweep)[0], user=grant(alice), dry_run=False)


def test_an_improvement_below_the_threshold_is_refused(alice, sweep):
    best = ranked(sweep)[0]
    StrategyConfig.objects.create(
        strategy="sma_cross", symbol="BTC", timeframe="1h", version=1, params=best.params
    )
    approve("PRODUCTION")
    with pytest.raises(ApplicationError) as exc:
        run_apply_to_production(run=best, user=grant(alice), dry_run=False)
    assert exc.value.field == "improvement" and "+0.0 %" in exc.value.message
    assert "at least 5 %" in exc.value.message
    assert StrategyConfig.objects.count() == 1 and ParameterChange.objects.count() == 0


def test_a_dry_run_returns_the_diff_and_writes_nothing(alice, sweep, weak_production):
    approve("PILOT")
    best = ranked(sweep)[0]
    answer = run_apply_to_production(run=best, user=grant(alice), dry_run=True)
    assert answer["dry_run"] and not answer["applied"] and answer["to_version"] == 2
    worst = ranked(sweep)[-1]  # production v1 holds the worst run's parameters
    assert answer["diff"] == {
        k: {"old": worst.params[k], "new": best.params[k]}
        for k in sorted(best.params)
        if worst.params[k] != best.params[k]
    }
    assert answer["diff"]  # the two differ somewhere
    # both measured on the sweep's data and costs: production's value is that run's sharpe
    assert answer["old_value"] == pytest.approx(worst.sharpe, rel=1e-9)
    assert answer["new_value"] == pytest.approx(best.sharpe)
    gain = 100 * (best.sharpe - worst.sharpe) / abs(worst.sharpe)
    assert answer["improvement_pct"] == pytest.approx(gain, rel=1e-9)
    assert StrategyConfig.objects.count() == 1 and ParameterChange.objects.count() == 0


def test_a_stale_expected_version_is_a_409(alice, sweep, weak_production):
    approve("PILOT")
    with pytest.raises(ApplicationError) as exc:
        run_apply_to_production(
            run=ranked(sweep)[0], user=grant(alice), dry_run=False, expected_version=0
        )
    assert exc.value.status == 409 and StrategyConfig.objects.count() == 1


def test_restoring_an_old_version_writes_it_as_a_new_one_and_the_bot_reads_it(
    alice, sweep, weak_production
):
    alice = grant(alice)
    approve("PILOT")
    run_apply_to_production(run=ranked(sweep)[0], user=alice, dry_run=False)
    api = api_for(alice)
    bot = api.get("/api/strategies/sma_cross/config?symbol=BTC&timeframe=1h").json()
    assert bot["version"] == 2
    answer = api.post(
        "/api/strategies/sma_cross/config/restore",
        {"symbol": "BTC", "timeframe": "1h", "version": 1, "expected_version": 2},
        format="json",
    ).json()
    assert answer["version"] == 3 and answer["params"] == weak_production.params
    bot = api.get("/api/strategies/sma_cross/config?symbol=BTC&timeframe=1h").json()
    assert bot["version"] == 3 and bot["params"] == weak_production.params
    kinds = list(ParameterChange.objects.order_by("id").values_list("kind", "to_version"))
    assert kinds == [("apply", 2), ("restore", 3)]
    history = api.get("/api/strategies/sma_cross/config/history?symbol=BTC&timeframe=1h").json()
    assert [c["to_version"] for c in history["changes"]] == [3, 2]


def test_the_bot_endpoint_answers_404_without_a_config_and_400_without_a_symbol(alice):
    api = api_for(alice)
    missing = api.get("/api/strategies/sma_cross/config?symbol=BTC&timeframe=1h")
    assert missing.status_code == 404
    assert missing.json() == {"ok": False, "error": "no production parameters for sma_cross BTC 1h"}
    response = api.get("/api/strategies/sma_cross/config?timeframe=1h")
    assert response.status_code == 400 and response.json()["field"] == "symbol"
    unknown = api.get("/api/strategies/nope/config?symbol=BTC&timeframe=1h")
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error": "unknown strategy 'nope'", "field": "strategy"}


# --- the API and the page ---------------------------------------------------------------------


def test_the_api_says_403_without_the_permission_even_to_staff(staff, sweep, weak_production):
    approve("PILOT")
    run = ranked(sweep)[0]
    response = api_for(staff).post(f"/api/runs/{run.id}/apply/", {}, format="json")
    assert response.status_code == 403 and "apply_parameters" in response.json()["error"]
    response = api_for(staff).post(f"/api/jobs/{sweep.id}/apply_best/", {}, format="json")
    assert response.status_code == 403 and "apply_parameters" in response.json()["error"]
    assert StrategyConfig.objects.count() == 1 and ParameterChange.objects.count() == 0


def test_the_api_applies_a_jobs_best_and_an_outsider_gets_404(
    alice, charlie, sweep, weak_production
):
    approve("PILOT")
    charlie = grant(charlie)
    path = f"/api/jobs/{sweep.id}/apply_best/"
    assert api_for(charlie).post(path, {}, format="json").status_code == 404
    response = api_for(grant(alice)).post(path, {"expected_version": 1}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    assert ParameterChange.objects.get().run == ranked(sweep)[0]


def test_the_api_refusal_names_the_gate(alice, sweep, weak_production):
    response = api_for(grant(alice)).post(
        f"/api/runs/{ranked(sweep)[0].id}/apply/", {"dry_run": True}, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == "stage"


def test_staff_without_the_permission_see_no_apply_button(client, staff, sweep):
    client.force_login(staff)
    html = client.get(f"/lab/jobs/{sweep.id}/").content.decode()
    assert 'id="best-table"' in html and "apply-button" not in html
    run = ranked(sweep)[0]
    assert client.get(f"/lab/jobs/{sweep.id}/runs/{run.id}/apply/").status_code == 403


def test_the_apply_button_confirms_then_applies(client, alice, sweep, weak_production):
    approve("PILOT")
    client.force_login(grant(alice))
    html = client.get(f"/lab/jobs/{sweep.id}/").content.decode()
    run = ranked(sweep)[0]
    assert f"/lab/jobs/{sweep.id}/runs/{run.id}/apply/" in html and "apply-button" in html
    page = client.get(f"/lab/jobs/{sweep.id}/runs/{run.id}/apply/").content.decode()
    assert 'id="apply-params"' in page and 'id="apply-metrics"' in page and "(objective)" in page
    assert 'name="expected_version" value="1"' in page
    response = client.post(
        f"/lab/jobs/{sweep.id}/runs/{run.id}/apply/", {"expected_version": "1", "reason": "ok"}
    )
    assert response.status_code == 200
    assert (
        '<p class="success" id="apply-result">Applied: sma_cross BTC 1h is now version 2.</p>'
        in response.content.decode()
    )
    v2 = StrategyConfig.objects.get(strategy="sma_cross", symbol="BTC", timeframe="1h", version=2)
    assert {k: v2.params[k] for k in run.params} == run.params
    again = client.post(f"/lab/jobs/{sweep.id}/runs/{run.id}/apply/", {"expected_version": "1"})
    assert again.status_code == 409
    error = again.content.decode().split('id="apply-error">', 1)[1].split("</p>", 1)[0]
    assert error.startswith("the production parameters changed: expected version 1, current is 2")
    assert ParameterChange.objects.count() == 1 and StrategyConfig.objects.count() == 2


def test_an_apply_losing_the_race_on_the_version_insert_is_a_409(
    alice, sweep, weak_production, monkeypatch
):
    """Another apply commits version 2 between our comparison and our write (the threaded
    race on PostgreSQL is tests/integration/test_production_postgres.py)."""
    alice = grant(alice)
    approve("PILOT")
    real_plan = apply_plan

    def plan_then_someone_else_applies(**kwargs):
        plan = real_plan(**kwargs)
        StrategyConfig.objects.create(
            strategy="sma_cross", symbol="BTC", timeframe="1h", version=2, params={}
        )
        return plan

    monkeypatch.setattr(apply, "apply_plan", plan_then_someone_else_applies)
    with pytest.raises(ApplicationError) as exc:
        run_apply_to_production(run=ranked(sweep)[0], user=alice, dry_run=False, expected_version=1)
    assert exc.value.status == 409 and "meanwhile" in exc.value.message
    assert ParameterChange.objects.count() == 0
