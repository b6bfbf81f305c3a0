"""Who may write production parameters and risk limits: every write surface × every persona,
with and without the permission the code enforces.

Personas (tests/conftest.py): alice owns the sweep, bob shares her team, charlie is an
outsider, stella is staff. "with" = granted ``strategies.apply_parameters`` (or
``strategies.change_riskconfig`` for risk limits). Each case checks the answer AND the
database: either exactly one new StrategyConfig version, one ParameterChange (or AuditEntry)
with the right values, or nothing written at all.

Seeing a job comes first on the surfaces that name one (API, page, command): an outsider gets
404 with or without the permission. Production keys belong to no user, so a restore or a risk
change is decided by the permission alone.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.strategies.models import AuditEntry, ParameterChange, RiskConfig, StrategyConfig
from apps.strategies.services.apply import (
    can_apply,
    run_apply_to_production,
    strategy_config_restore,
)
from apps.strategies.services.risk_configs import risk_config_update
from backtestlab.errors import ApplicationError
from tests.strategies.conftest import approve, grant, ranked

pytestmark = pytest.mark.django_db

PERSONAS = ["alice", "bob", "charlie", "staff"]
KEY = {"strategy": "sma_cross", "symbol": "BTC", "timeframe": "1h", "pattern": ""}
FORBIDDEN = "the strategies.apply_parameters permission is needed"


@pytest.fixture
def people(alice, bob, charlie, staff):
    return {"alice": alice, "bob": bob, "charlie": charlie, "staff": staff}


def actor(people, name: str, allowed: bool, codename: str = "apply_parameters"):
    user = people[name]
    return grant(user, codename) if allowed else user


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def sees_the_job(name: str) -> bool:
    return name != "charlie"


def apply_status(name: str, allowed: bool) -> int:
    """The answer of a surface that names alice's job: visibility first, then permission."""
    if not sees_the_job(name):
        return 404
    return 200 if allowed else 403


@pytest.fixture
def prod(sweep, weak_production):
    """alice's sweep, production v1 = its worst run, the strategy approved for PILOT."""
    approve("PILOT")
    return sweep


def assert_nothing_written():
    assert list(StrategyConfig.objects.values_list("version", flat=True)) == [1]
    assert ParameterChange.objects.count() == 0


def assert_applied(*, run, user, source: str):
    """v2 holds the run's parameters; one audit row names who, how, from which run."""
    assert StrategyConfig.objects.count() == 2
    config = StrategyConfig.objects.get(**KEY, version=2)
    assert config.params == run.params  # the grid names every sma_cross parameter
    assert config.created_by == user
    change = ParameterChange.objects.get()
    assert (change.kind, change.dry_run, change.source) == ("apply", False, source)
    assert (change.from_version, change.to_version) == (1, 2)
    assert change.config == config and change.run == run and change.job == run.job
    assert change.user == user and change.new_params == run.params
    assert change.old_params == ranked(run.job)[-1].params  # the weak v1
    assert change.stage == "PILOT" and change.objective == "sharpe"
    assert change.new_value == pytest.approx(run.sharpe)


# --- apply: the REST API ---


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_applying_a_run_through_the_api(people, prod, name, allowed):
    user = actor(people, name, allowed)
    run = ranked(prod)[0]
    response = api_for(user).post(
        f"/api/runs/{run.id}/apply/", {"expected_version": 1, "reason": "weekly"}, format="json"
    )
    assert response.status_code == apply_status(name, allowed), response.content
    body = response.json()
    if response.status_code == 200:
        assert body["applied"] and body["version"] == 2 and body["from_version"] == 1
        assert_applied(run=run, user=user, source="api")
        assert ParameterChange.objects.get().reason == "weekly"
    elif response.status_code == 403:
        assert body == {
            "ok": False,
            "error": f"you may not apply parameters to production: {FORBIDDEN}",
        }
        assert_nothing_written()
    else:
        assert body["ok"] is False
        assert_nothing_written()


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_applying_a_jobs_best_through_the_api(people, prod, name, allowed):
    user = actor(people, name, allowed)
    response = api_for(user).post(
        f"/api/jobs/{prod.id}/apply_best/", {"expected_version": 1}, format="json"
    )
    assert response.status_code == apply_status(name, allowed), response.content
    if response.status_code == 200:
        assert response.json()["version"] == 2
        assert_applied(run=ranked(prod)[0], user=user, source="api")
    else:
        if response.status_code == 403:
            assert FORBIDDEN in response.json()["error"]
        assert_nothing_written()


def test_the_api_refuses_an_anonymous_caller(prod):
    run = ranked(prod)[0]
    for path in (f"/api/runs/{run.id}/apply/", f"/api/jobs/{prod.id}/apply_best/"):
        response = APIClient().post(path, {}, format="json")
        assert response.status_code in (401, 403)
        assert "credentials were not provided" in response.json()["error"]
    assert_nothing_written()


# --- apply: the best table's page ---


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_applying_a_run_on_the_page(client, people, prod, name, allowed):
    user = actor(people, name, allowed)
    client.force_login(user)
    run = ranked(prod)[0]
    path = f"/lab/jobs/{prod.id}/runs/{run.id}/apply/"
    confirm = client.get(path)
    assert confirm.status_code == apply_status(name, allowed)
    assert ('id="apply-form"' in confirm.content.decode()) == (confirm.status_code == 200)
    response = client.post(path, {"expected_version": "1", "reason": "from the page"})
    assert response.status_code == apply_status(name, allowed)
    if response.status_code == 200:
        html = response.content.decode()
        assert 'id="apply-result"' in html and "sma_cross BTC 1h is now version 2." in html
        assert_applied(run=run, user=user, source="page")
        assert ParameterChange.objects.get().reason == "from the page"
    else:
        assert_nothing_written()


def test_the_page_sends_an_anonymous_visitor_to_log_in(client, prod):
    run = ranked(prod)[0]
    response = client.post(f"/lab/jobs/{prod.id}/runs/{run.id}/apply/", {"expected_version": "1"})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert_nothing_written()


# --- apply: manage.py apply_best_params ---


def command(*args) -> dict:
    out = StringIO()
    call_command("apply_best_params", "--apply", "--min-improvement=5", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_applying_from_the_command_line_as_a_user(people, prod, name, allowed):
    user = actor(people, name, allowed)
    if not sees_the_job(name):
        with pytest.raises(CommandError, match=f"job {prod.id} does not exist for charlie"):
            command("--job", str(prod.id), "--user", user.username)
        assert command("--user", user.username)["changes"] == []  # nor found by strategy
        assert_nothing_written()
        return
    result = command("--job", str(prod.id), "--user", user.username)
    if allowed:
        assert [c["to_version"] for c in result["changes"]] == [2] and not result["refused"]
        assert result["changes"][0]["applied"] is True
        assert_applied(run=ranked(prod)[0], user=user, source="command")
    else:
        assert result["changes"] == []
        [refusal] = result["refused"]
        assert refusal["run"] == ranked(prod)[0].id and FORBIDDEN in refusal["reason"]
        assert_nothing_written()


def test_the_command_without_a_user_acts_as_the_system(prod):
    result = command("--job", str(prod.id))
    assert [c["to_version"] for c in result["changes"]] == [2]
    assert_applied(run=ranked(prod)[0], user=None, source="command")


def test_the_command_refuses_an_unknown_user(prod):
    with pytest.raises(CommandError, match="no user 'mallory'"):
        command("--user", "mallory")
    assert_nothing_written()


# --- apply: beat (a template's auto-apply acts with its owner's permission) ---


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_auto_apply_acts_with_the_template_owners_permission(people, datasets, name, allowed):
    import datetime as dt

    from apps.optimization.models import JobTemplate
    from apps.optimization.services.schedules import template_fire, template_schedule_ensure
    from tests.factories import SMALL_GRID, run_all_chunks

    owner = actor(people, name, allowed)
    approve("PILOT")
    template = JobTemplate.objects.create(
        name="nightly",
        strategy="sma_cross",
        parameter_grid=SMALL_GRID,
        min_trades=1,
        owner=owner,
        auto_apply="apply",
        min_improvement_pct=0,
    )
    template.datasets.set(datasets[:1])
    template_schedule_ensure(template)
    firing = template_fire(template_id=template.id, now=dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    run_all_chunks(firing.job)
    firing.refresh_from_db()
    assert firing.job.created_by == owner and firing.apply_status == "done"
    best = ranked(firing.job)[0]
    if allowed:
        assert [c["to_version"] for c in firing.apply_result["changes"]] == [1]
        config = StrategyConfig.objects.get()
        assert (config.version, config.params, config.created_by) == (1, best.params, owner)
        change = ParameterChange.objects.get()
        assert (change.kind, change.source, change.user, change.run) == (
            "apply",
            "beat",
            owner,
            best,
        )
    else:
        assert firing.apply_result["changes"] == []
        assert FORBIDDEN in firing.apply_result["refused"][0]["reason"]
        assert StrategyConfig.objects.count() == 0 and ParameterChange.objects.count() == 0


# --- apply: the service itself ---


def test_the_apply_service_refuses_an_anonymous_user_but_not_the_system(prod):
    run = ranked(prod)[0]
    for dry_run in (True, False):
        with pytest.raises(ApplicationError) as exc:
            run_apply_to_production(run=run, user=AnonymousUser(), dry_run=dry_run)
        assert exc.value.status == 403 and FORBIDDEN in exc.value.message
    assert_nothing_written()
    answer = run_apply_to_production(run=run, user=None, dry_run=False)
    assert answer["version"] == 2
    assert_applied(run=run, user=None, source="api")


@pytest.mark.parametrize("name", PERSONAS)
def test_even_a_dry_run_needs_the_permission(people, prod, name):
    with pytest.raises(ApplicationError) as exc:
        run_apply_to_production(
            run=ranked(prod)[0], user=people[name], dry_run=True, record_proposal=True
        )
    assert exc.value.status == 403
    assert_nothing_written()


def test_can_apply_is_the_permission_and_nothing_else(people, django_user_model):
    assert not can_apply(None) and not can_apply(AnonymousUser())
    assert not any(can_apply(u) for u in people.values())
    assert can_apply(grant(people["charlie"]))
    root = django_user_model.objects.create_superuser("root", password="root-pw-123")
    assert can_apply(root)
    inactive = grant(people["bob"])
    inactive.is_active = False
    inactive.save()
    assert not can_apply(type(inactive).objects.get(pk=inactive.pk))


# --- restore ---


@pytest.fixture
def two_versions(alice):
    v1 = StrategyConfig.objects.create(**KEY, version=1, params={"fast": 5, "slow": 30})
    v2 = StrategyConfig.objects.create(**KEY, version=2, params={"fast": 20, "slow": 60})
    return v1, v2


def assert_restored(*, user, source: str, v1, v2, reason: str):
    v3 = StrategyConfig.objects.get(**KEY, version=3)
    assert v3.params == v1.params and v3.created_by == user
    assert v3.note == (reason or "restored version 1")
    change = ParameterChange.objects.get()
    assert (change.kind, change.from_version, change.to_version) == ("restore", 2, 3)
    assert change.old_params == v2.params and change.new_params == v1.params
    assert change.config == v3 and change.user == user and change.source == source
    assert change.reason == reason and change.run is None and not change.dry_run


def assert_not_restored():
    assert list(StrategyConfig.objects.values_list("version", flat=True)) == [2, 1]
    assert ParameterChange.objects.count() == 0


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_restoring_a_version_through_the_api(people, two_versions, name, allowed):
    user = actor(people, name, allowed)
    response = api_for(user).post(
        "/api/strategies/sma_cross/config/restore",
        {
            "symbol": "BTC",
            "timeframe": "1h",
            "version": 1,
            "expected_version": 2,
            "reason": "v2 lost money",
        },
        format="json",
    )
    body = response.json()
    if allowed:
        assert response.status_code == 200, body
        assert (body["version"], body["restored_version"]) == (3, 1)
        assert body["params"] == two_versions[0].params
        assert_restored(
            user=user, source="api", v1=two_versions[0], v2=two_versions[1], reason="v2 lost money"
        )
    else:
        assert response.status_code == 403
        assert body["error"] == f"you may not apply parameters to production: {FORBIDDEN}"
        assert_not_restored()


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_the_restore_service_checks_the_permission_itself(people, two_versions, name, allowed):
    """Every caller (API, a future page or command) relies on the service's own check."""
    user = actor(people, name, allowed)
    kwargs = dict(**KEY, version=1, user=user, source="command")
    if allowed:
        answer = strategy_config_restore(**kwargs)
        assert answer["version"] == 3 and answer["applied"]
        assert_restored(
            user=user, source="command", v1=two_versions[0], v2=two_versions[1], reason=""
        )
    else:
        with pytest.raises(ApplicationError) as exc:
            strategy_config_restore(**kwargs)
        assert exc.value.status == 403 and FORBIDDEN in exc.value.message
        assert_not_restored()


def test_the_restore_service_refuses_an_anonymous_user_but_not_the_system(two_versions):
    with pytest.raises(ApplicationError) as exc:
        strategy_config_restore(**KEY, version=1, user=AnonymousUser())
    assert exc.value.status == 403
    assert_not_restored()
    assert strategy_config_restore(**KEY, version=1, user=None)["version"] == 3
    assert_restored(user=None, source="api", v1=two_versions[0], v2=two_versions[1], reason="")


def test_the_restore_permission_is_checked_before_anything_is_revealed(staff, two_versions):
    """Without the permission a restore of a missing key or version is a 403, not a 404/400."""
    for kwargs in ({**KEY, "symbol": "ETH", "version": 1}, {**KEY, "version": 9}):
        with pytest.raises(ApplicationError) as exc:
            strategy_config_restore(**kwargs, user=staff)
        assert exc.value.status == 403


# --- risk limits ---


@pytest.mark.parametrize("allowed", [True, False], ids=["with", "without"])
@pytest.mark.parametrize("name", PERSONAS)
def test_changing_risk_limits_through_the_api(people, name, allowed):
    user = actor(people, name, allowed, "change_riskconfig")
    path = "/api/strategies/options_selector/risk"
    response = api_for(user).put(path, {"max_new_trades_per_day": 1}, format="json")
    if allowed:
        assert response.status_code == 200
        assert response.json()["max_new_trades_per_day"] == 1 and response.json()["stored"]
        config = RiskConfig.objects.get()
        assert (config.strategy, config.max_new_trades_per_day) == ("options_selector", 1)
        assert config.updated_by == user
        entry = AuditEntry.objects.get()
        assert (entry.kind, entry.action, entry.source, entry.user) == (
            "risk_config",
            "create",
            "api",
            user,
        )
        assert entry.before is None and entry.after["max_new_trades_per_day"] == 1
    else:
        assert response.status_code == 403
        assert "strategies.change_riskconfig permission is needed" in response.json()["error"]
        assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0
    assert api_for(user).get(path).json()["max_new_trades_per_day"] == (1 if allowed else 2)


def test_the_apply_permission_does_not_open_the_risk_limits(alice):
    response = api_for(grant(alice)).put(
        "/api/strategies/options_selector/risk", {"enabled": False}, format="json"
    )
    assert response.status_code == 403 and RiskConfig.objects.count() == 0


def test_the_risk_permission_does_not_open_production_parameters(two_versions, alice):
    response = api_for(grant(alice, "change_riskconfig")).post(
        "/api/strategies/sma_cross/config/restore",
        {"symbol": "BTC", "timeframe": "1h", "version": 1},
        format="json",
    )
    assert response.status_code == 403
    assert_not_restored()


def test_the_risk_service_refuses_an_anonymous_user_but_not_the_system():
    with pytest.raises(ApplicationError) as exc:
        risk_config_update(
            strategy="options_selector", data={"enabled": False}, user=AnonymousUser()
        )
    assert exc.value.status == 403 and RiskConfig.objects.count() == 0
    obj = risk_config_update(
        strategy="options_selector", data={"enabled": False}, user=None, source="command"
    )
    assert obj.enabled is False and obj.updated_by is None
    entry = AuditEntry.objects.get()
    assert (entry.user, entry.source, entry.action) == (None, "command", "create")
