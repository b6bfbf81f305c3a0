"""Risk configs and approval configs: permission-guarded edits, each one in the audit log;
the auto-tuner command."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.strategies.models import ApprovalConfig, AuditEntry, ParameterChange, RiskConfig
from tests.strategies.conftest import approve, grant

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_risk_config_defaults_are_the_seeds(alice):
    body = api_for(alice).get("/api/strategies/options_selector/risk").json()
    assert body["max_risk_per_trade"] == 0.01 and body["max_risk_per_underlying"] == 0.03
    assert body["max_new_trades_per_day"] == 2 and body["enabled"] and not body["stored"]


def test_editing_a_risk_config_needs_the_permission_and_is_audited(alice, staff):
    path = "/api/strategies/options_selector/risk"
    refused = api_for(staff).put(path, {"max_new_trades_per_day": 1}, format="json")
    assert refused.status_code == 403 and refused.json()["ok"] is False
    assert "change_riskconfig" in refused.json()["error"], refused.json()
    assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0
    alice = grant(alice, "change_riskconfig")
    response = api_for(alice).put(path, {"max_risk_per_trade": 0.005}, format="json")
    assert response.status_code == 200 and response.json()["max_risk_per_trade"] == 0.005
    api_for(alice).put(path, {"enabled": False}, format="json")
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.kind, e.action) for e in entries] == [
        ("risk_config", "create"),
        ("risk_config", "update"),
    ]
    assert entries[1].before["enabled"] is True and entries[1].after["enabled"] is False
    assert entries[1].user == alice and entries[1].source == "api"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"max_risk_per_trade": 0}, "max_risk_per_trade"),
        ({"max_risk_per_trade": 2}, "max_risk_per_trade"),
        ({"max_risk_per_underlying": "lots"}, "max_risk_per_underlying"),
        ({"max_new_trades_per_day": -1}, "max_new_trades_per_day"),
        ({"max_new_trades_per_day": 1.5}, "max_new_trades_per_day"),
        ({"enabled": "yes"}, "enabled"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_risk_values_are_a_400_naming_the_field(alice, body, field):
    response = api_for(grant(alice, "change_riskconfig")).put(
        "/api/strategies/options_selector/risk", body, format="json"
    )
    assert response.status_code == 400 and response.json()["field"] == field
    assert RiskConfig.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_admin_edits_of_risk_and_approval_configs_are_audited(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="root-pw-123")
    client.force_login(admin)
    response = client.post(
        "/admin/strategies/riskconfig/add/",
        {"strategy": "options_selector", "max_risk_per_trade": "0.0100",
         "max_risk_per_underlying": "0.0300", "max_new_trades_per_day": "2", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    config = ApprovalConfig.objects.create(name="strict")
    client.post(f"/admin/strategies/approvalconfig/{config.id}/delete/", {"post": "yes"})
    kinds = list(AuditEntry.objects.order_by("id").values_list("kind", "action", "source"))
    assert kinds == [("risk_config", "create", "admin"), ("approval_config", "delete", "admin")]
    listing = client.get("/admin/strategies/auditentry/")
    assert listing.status_code == 200
    rows = re.findall(
        r'<td class="field-kind">([^<]*)</td><td class="field-action">([^<]*)</td>',
        listing.content.decode(),
    )
    assert rows == [("Approval config", "Delete"), ("Risk config", "Create")]  # newest first
    changes = client.get("/admin/strategies/parameterchange/")
    assert changes.status_code == 200 and "0 parameter changes" in changes.content.decode()
    assert client.get("/admin/strategies/auditentry/add/").status_code == 403  # read-only log
    assert AuditEntry.objects.count() == 2


def test_the_auto_tuner_command_proposes_by_default(alice, datasets):
    from tests.factories import make_job, run_all_chunks

    run_all_chunks(make_job(alice, datasets))
    approve("PILOT")
    out = StringIO()
    call_command("apply_best_params", "--symbol", "BTC", "--min-improvement=-1e9", stdout=out)
    result = json.loads(out.getvalue())
    assert result["dry_run"] and [c["symbol"] for c in result["changes"]] == ["BTC"]
    assert ParameterChange.objects.get().dry_run
    out = StringIO()
    call_command("apply_best_params", "--apply", "--min-improvement=-1e9", stdout=out)
    assert {c["symbol"] for c in json.loads(out.getvalue())["changes"]} == {"BTC", "ETH"}
    assert ParameterChange.objects.filter(dry_run=False).count() == 2
