"""Django admin writes of the production side, each with and without its permission:
the run list's Apply and Dry-run actions, a hand-written StrategyConfig version, risk and
approval configs (Django's model permissions, every change audited), and the audit tables
and approval history that nobody edits."""

import pytest
from django.contrib.auth.models import Permission

from apps.strategies.admin_actions import improvement_text
from apps.strategies.models import (
    ApprovalConfig,
    AuditEntry,
    ParameterChange,
    RiskConfig,
    StrategyApproval,
    StrategyConfig,
)
from tests.strategies.conftest import approve, grant, ranked

pytestmark = pytest.mark.django_db

RUNS = "/admin/optimization/optimizationrun/"
CONFIG_ADD = "/admin/strategies/strategyconfig/add/"
KEY = {"strategy": "sma_cross", "symbol": "BTC", "timeframe": "1h", "pattern": ""}


def with_perms(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def run_action(client, action: str, runs):
    return client.post(
        RUNS, {"action": action, "index": 0, "_selected_action": [r.id for r in runs]}, follow=True
    )


@pytest.fixture
def prod(sweep, weak_production):
    approve("PILOT")
    return sweep


@pytest.fixture
def run_viewer(staff):
    """Staff who may see the run list (Django's view permission), nothing more."""
    return with_perms(staff, "view_optimizationrun")


def expected_diff(old: dict, new: dict) -> dict:
    return {k: {"old": old[k], "new": new[k]} for k in sorted(new) if old[k] != new[k]}


# --- the run list's Apply and Dry-run actions ---


def test_the_apply_action_writes_the_next_version_and_its_audit_row(client, run_viewer, prod):
    user = grant(run_viewer)
    client.force_login(user)
    best = ranked(prod)[0]
    response = run_action(client, "apply_to_production", [best])
    assert response.status_code == 200
    assert messages_of(response) == [f"Run {best.id} applied: sma_cross BTC 1h v2."]
    config = StrategyConfig.objects.get(**KEY, version=2)
    assert config.params == best.params and config.created_by == user
    assert config.note == f"admin action on run {best.id}"
    change = ParameterChange.objects.get()
    assert (change.kind, change.source, change.user, change.run, change.config) == (
        "apply",
        "admin",
        user,
        best,
        config,
    )
    assert (change.from_version, change.to_version, change.dry_run) == (1, 2, False)
    assert change.reason == f"admin action on run {best.id}"


def test_the_dry_run_action_shows_the_diff_and_writes_nothing(client, run_viewer, prod):
    client.force_login(grant(run_viewer))
    best, worst = ranked(prod)[0], ranked(prod)[-1]
    response = run_action(client, "apply_dry_run", [best])
    [message] = messages_of(response)
    diff = expected_diff(worst.params, best.params)
    assert diff  # the best and the worst run differ in at least one parameter
    assert message.startswith(f"Run {best.id} would make sma_cross BTC 1h v2: changes {diff} (")
    assert message.endswith(" % better)")
    improvement = float(message.rsplit("(", 1)[1].split(" %")[0])
    assert improvement >= 5  # the improvement gate passed
    assert list(StrategyConfig.objects.values_list("version", flat=True)) == [1]
    assert ParameterChange.objects.count() == 0


def test_the_dry_run_message_says_when_no_percent_is_defined():
    assert improvement_text(None) == "better; no % improvement defined"
    assert improvement_text(12.345) == "+12.3 % better"


def test_the_apply_action_reports_each_refusal_and_applies_the_rest(client, run_viewer, prod):
    """The worst run equals v1 (+0 %, and worse than v2 once the best is applied): refused
    whatever the order; the best run is applied."""
    client.force_login(grant(run_viewer))
    best, worst = ranked(prod)[0], ranked(prod)[-1]
    msgs = messages_of(run_action(client, "apply_to_production", [best, worst]))
    assert len(msgs) == 2
    assert f"Run {best.id} applied: sma_cross BTC 1h v2." in msgs
    assert any(
        m.startswith(f"Run {worst.id}: not applied (improvement gate): sharpe ") for m in msgs
    )
    assert StrategyConfig.objects.get(**KEY, version=2).params == best.params
    assert ParameterChange.objects.get().run == best


@pytest.mark.parametrize("action", ["apply_to_production", "apply_dry_run"])
def test_staff_without_the_permission_are_not_offered_the_actions(client, run_viewer, prod, action):
    client.force_login(run_viewer)
    page = client.get(RUNS).content.decode()
    assert f'value="{action}"' not in page and 'name="action"' not in page
    response = run_action(client, action, [ranked(prod)[0]])
    assert response.status_code == 200 and messages_of(response) == []
    assert list(StrategyConfig.objects.values_list("version", flat=True)) == [1]
    assert ParameterChange.objects.count() == 0


def test_staff_with_the_permission_are_offered_both_actions(client, run_viewer, prod):
    client.force_login(grant(run_viewer))
    page = client.get(RUNS).content.decode()
    assert 'value="apply_to_production"' in page and 'value="apply_dry_run"' in page


@pytest.mark.parametrize("name", ["alice", "bob", "charlie"])
def test_non_staff_with_the_permission_cannot_use_the_admin(client, request, prod, name):
    user = with_perms(request.getfixturevalue(name), "apply_parameters", "view_optimizationrun")
    client.force_login(user)
    response = client.post(
        RUNS,
        {"action": "apply_to_production", "index": 0, "_selected_action": [ranked(prod)[0].id]},
    )
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert ParameterChange.objects.count() == 0 and StrategyConfig.objects.count() == 1


# --- a hand-written production version ---


def config_form(**overrides) -> dict:
    return {**KEY, "params": '{"fast": 8, "slow": 40}', "note": "desk override", **overrides}


def test_staff_without_the_apply_permission_cannot_add_a_version(client, staff):
    """Django's own add permission is not enough: a version is a production change."""
    user = with_perms(staff, "add_strategyconfig", "change_strategyconfig", "view_strategyconfig")
    client.force_login(user)
    assert client.get(CONFIG_ADD).status_code == 403
    assert client.post(CONFIG_ADD, config_form()).status_code == 403
    listing = client.get("/admin/strategies/strategyconfig/").content.decode()
    assert CONFIG_ADD not in listing
    assert StrategyConfig.objects.count() == 0 and ParameterChange.objects.count() == 0


@pytest.mark.parametrize("name", ["alice", "bob", "charlie"])
def test_non_staff_with_the_apply_permission_cannot_add_a_version(client, request, name):
    client.force_login(grant(request.getfixturevalue(name)))
    response = client.post(CONFIG_ADD, config_form())
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert StrategyConfig.objects.count() == 0


def test_staff_with_the_apply_permission_add_the_next_version_audited(client, staff):
    user = grant(staff)
    StrategyConfig.objects.create(**KEY, version=1, params={"fast": 5, "slow": 30})
    client.force_login(user)
    assert client.get(CONFIG_ADD).status_code == 200
    # version and created_by are not form fields: whatever is posted for them is ignored
    response = client.post(CONFIG_ADD, config_form(version="7", created_by="1"))
    assert response.status_code == 302, response.content.decode()[:3000]
    v2 = StrategyConfig.objects.get(**KEY, version=2)
    # missing parameters take sma_cross's defaults (sl_pct 2.0, rr 2.0)
    assert v2.params == {"fast": 8, "slow": 40, "sl_pct": 2.0, "rr": 2.0}
    assert v2.created_by == user and v2.note == "desk override"
    assert StrategyConfig.objects.count() == 2
    change = ParameterChange.objects.get()
    assert (change.kind, change.source, change.user, change.config) == (
        "manual",
        "admin",
        user,
        v2,
    )
    assert (change.from_version, change.to_version) == (1, 2)
    assert change.old_params == {"fast": 5, "slow": 30} and change.new_params == v2.params
    assert change.reason == "desk override"


def test_the_first_hand_written_version_is_version_1(client, staff):
    client.force_login(grant(staff))
    client.post(CONFIG_ADD, config_form(symbol="ETH"))
    v1 = StrategyConfig.objects.get()
    assert (v1.symbol, v1.version) == ("ETH", 1)
    change = ParameterChange.objects.get()
    assert (change.from_version, change.to_version, change.old_params) == (0, 1, None)


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"strategy": "nope"}, "strategy", "Select a valid choice"),
        ({"params": '{"fast": 50, "slow": 40}'}, "params", "fast"),  # fast must be < slow
        ({"params": '{"fats": 8}'}, "params", "fats"),
        ({"params": '{"fast": "eight"}'}, "params", "fast"),
        ({"params": '{"fast": 1}'}, "params", "fast"),  # below its bound (2)
        ({"params": "[8, 40]"}, "params", "params must be an object"),
        ({"params": "{oops"}, "params", "Enter a valid JSON"),
        ({"symbol": ""}, "symbol", "This field is required"),
    ],
)
def test_a_bad_hand_written_version_is_refused_and_nothing_stored(
    client, staff, overrides, field, message
):
    client.force_login(grant(staff))
    response = client.post(CONFIG_ADD, config_form(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert StrategyConfig.objects.count() == 0 and ParameterChange.objects.count() == 0


def test_no_one_edits_or_deletes_a_version_in_admin(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-pw-123")
    v1 = StrategyConfig.objects.create(**KEY, version=1, params={"fast": 5, "slow": 30})
    client.force_login(root)
    page = client.get(f"/admin/strategies/strategyconfig/{v1.id}/change/")
    assert page.status_code == 200 and 'name="params"' not in page.content.decode()
    client.post(
        f"/admin/strategies/strategyconfig/{v1.id}/change/", {**config_form(), "version": "1"}
    )
    response = client.post(f"/admin/strategies/strategyconfig/{v1.id}/delete/", {"post": "yes"})
    assert response.status_code == 403
    client.post(
        "/admin/strategies/strategyconfig/",
        {"action": "delete_selected", "_selected_action": [v1.id], "post": "yes"},
    )
    v1.refresh_from_db()
    assert v1.params == {"fast": 5, "slow": 30} and StrategyConfig.objects.count() == 1


# --- risk and approval configs: Django's model permissions, every change audited ---

RISK_FORM = {
    "strategy": "options_selector",
    "max_risk_per_trade": "0.0050",
    "max_risk_per_underlying": "0.0300",
    "max_new_trades_per_day": "2",
    "enabled": "on",
}


def approval_form(**overrides) -> dict:
    fields = {
        f.name: f.default for f in ApprovalConfig._meta.fields if f.name not in ("id", "updated_at")
    }
    fields = {k: ("on" if v is True else v) for k, v in fields.items() if v is not False}
    return {**fields, "name": "strict", **overrides}


CONFIGS = [
    ("riskconfig", RiskConfig, RISK_FORM, "risk_config"),
    ("approvalconfig", ApprovalConfig, approval_form(), "approval_config"),
]


@pytest.mark.parametrize("model, cls, form, kind", CONFIGS)
def test_staff_without_the_model_permission_cannot_add_a_config(
    client, staff, model, cls, form, kind
):
    client.force_login(with_perms(staff, f"view_{model}", "apply_parameters"))
    assert client.post(f"/admin/strategies/{model}/add/", form).status_code == 403
    assert cls.objects.count() == 0 and AuditEntry.objects.count() == 0


@pytest.mark.parametrize("model, cls, form, kind", CONFIGS)
def test_staff_with_the_add_permission_add_a_config_audited(client, staff, model, cls, form, kind):
    user = with_perms(staff, f"add_{model}", f"view_{model}")
    client.force_login(user)
    response = client.post(f"/admin/strategies/{model}/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    obj = cls.objects.get()
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.action, entry.source, entry.user) == (kind, "create", "admin", user)
    assert entry.object_id == obj.pk and entry.before is None
    if cls is RiskConfig:
        assert str(obj.max_risk_per_trade) == "0.0050" and obj.updated_by == user
        assert entry.after["max_risk_per_trade"] == "0.0050"
    else:
        assert obj.name == "strict" and entry.after["name"] == "strict"


@pytest.mark.parametrize("model, cls, form, kind", CONFIGS)
def test_changing_a_config_needs_the_change_permission(client, staff, model, cls, form, kind):
    obj = cls.objects.create(**({"strategy": "options_selector"} if cls is RiskConfig else {}))
    url = f"/admin/strategies/{model}/{obj.pk}/change/"
    changed = {**form, ("max_new_trades_per_day" if cls is RiskConfig else "min_trades"): "7"}
    client.force_login(with_perms(staff, f"view_{model}"))
    assert client.post(url, changed).status_code == 403
    assert AuditEntry.objects.count() == 0
    user = with_perms(staff, f"change_{model}")
    client.force_login(user)
    assert client.post(url, changed).status_code == 302
    obj.refresh_from_db()
    field = "max_new_trades_per_day" if cls is RiskConfig else "min_trades"
    before = getattr(cls(), field)  # the default it had
    assert getattr(obj, field) == 7
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.action, entry.user) == (kind, "update", user)
    assert (entry.before[field], entry.after[field]) == (before, 7)


@pytest.mark.parametrize("model, cls, form, kind", CONFIGS)
def test_deleting_a_config_needs_the_delete_permission(client, staff, model, cls, form, kind):
    obj = cls.objects.create(**({"strategy": "options_selector"} if cls is RiskConfig else {}))
    url = f"/admin/strategies/{model}/{obj.pk}/delete/"
    client.force_login(with_perms(staff, f"view_{model}", f"change_{model}"))
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert cls.objects.count() == 1 and AuditEntry.objects.count() == 0
    user = with_perms(staff, f"delete_{model}")
    client.force_login(user)
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert cls.objects.count() == 0
    entry = AuditEntry.objects.get()
    assert (entry.kind, entry.action, entry.user, entry.after) == (kind, "delete", user, None)
    assert entry.object_id == obj.pk and entry.before["id"] == obj.pk


def test_a_risk_config_out_of_bounds_is_refused_in_admin(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-pw-123")
    client.force_login(root)
    for field, value in (
        ("max_risk_per_trade", "0"),
        ("max_risk_per_underlying", "1.5"),
        ("max_new_trades_per_day", "1001"),
    ):
        response = client.post("/admin/strategies/riskconfig/add/", {**RISK_FORM, field: value})
        assert response.status_code == 200
        assert field in response.context["adminform"].form.errors
    assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_worst_dd_prod", "1.5"),
        ("max_worst_dd_pilot", "-0.1"),
        ("min_psych_score_prod", "101"),
        ("min_regime_share", "2"),
        ("max_neighbour_drop", "-1"),
        ("min_oos_positive_share", "1.01"),
        ("min_years", "-1"),
        ("mc_sims", "0"),
    ],
)
def test_an_approval_threshold_out_of_its_range_is_refused_in_admin(
    client, django_user_model, field, value
):
    """Drawdowns, shares and drops are fractions, psychology scores 0..100: a threshold outside
    would make every strategy pass (or fail) its gate."""
    root = django_user_model.objects.create_superuser("root", password="root-pw-123")
    client.force_login(root)
    response = client.post("/admin/strategies/approvalconfig/add/", approval_form(**{field: value}))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert ApprovalConfig.objects.count() == 0 and AuditEntry.objects.count() == 0


# --- what nobody edits ---


def test_approval_decisions_and_the_audit_log_are_read_only_even_for_a_superuser(
    client, django_user_model
):
    root = django_user_model.objects.create_superuser("root", password="root-pw-123")
    client.force_login(root)
    decision = approve("PRODUCTION")
    change = ParameterChange.objects.create(
        **KEY, kind="manual", from_version=0, to_version=1, new_params={}, source="admin"
    )
    entry = AuditEntry.objects.create(
        kind="risk_config", action="create", object_repr="risk x", source="api"
    )
    for model, obj in (
        ("strategyapproval", decision),
        ("parameterchange", change),
        ("auditentry", entry),
    ):
        base = f"/admin/strategies/{model}/"
        assert client.get(f"{base}add/").status_code == 403
        assert client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
        client.post(
            base, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        )
    assert StrategyApproval.objects.get().stage == "PRODUCTION"
    assert ParameterChange.objects.count() == 1 and AuditEntry.objects.count() == 1
