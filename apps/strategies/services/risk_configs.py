"""Risk configurations and the audit trail of configuration changes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.forms.models import model_to_dict

from apps.strategies.models import (
    AuditEntry,
    RiskConfig,
)
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError

RISK_PERMISSION = "strategies.change_riskconfig"


def strategy_key_validate(key: str) -> str:
    if key not in STRATEGIES:
        raise ApplicationError(f"unknown strategy {key!r}", field="strategy", status=404)
    return key


def config_snapshot(obj) -> dict:
    data = model_to_dict(obj)
    return {k: (str(v) if not isinstance(v, int | float | bool | str | type(None)) else v)
            for k, v in data.items()}  # fmt: skip


def config_audit_record(
    *, obj, before: dict | None, user, source: str, deleted: bool = False
) -> AuditEntry:
    kind = (
        AuditEntry.Kind.RISK_CONFIG
        if isinstance(obj, RiskConfig)
        else AuditEntry.Kind.APPROVAL_CONFIG
    )
    action = (AuditEntry.Action.DELETE if deleted else
              AuditEntry.Action.CREATE if before is None else AuditEntry.Action.UPDATE)  # fmt: skip
    return AuditEntry.objects.create(
        kind=kind, action=action, object_id=obj.pk, object_repr=str(obj)[:200], before=before,
        after=None if deleted else config_snapshot(obj), source=source,
        user=user if user is not None and user.is_authenticated else None,
    )  # fmt: skip


def risk_config_update(*, strategy: str, data: dict, user, source: str = "api") -> RiskConfig:
    """Create or change a strategy's risk limits (permission strategies.change_riskconfig)."""
    if user is not None and not user.has_perm(RISK_PERMISSION):
        raise ApplicationError(
            "you may not edit risk configs: the strategies.change_riskconfig permission is needed",
            status=403,
        )
    strategy_key_validate(strategy)
    if not isinstance(data, dict):
        raise ApplicationError("the body must be a JSON object")
    allowed = ("max_risk_per_trade", "max_risk_per_underlying", "max_new_trades_per_day", "enabled")
    for key in data:
        if key not in allowed:
            raise ApplicationError(
                f"unknown field {key!r}; allowed: {', '.join(allowed)}", field=key
            )
    values = {}
    for key in ("max_risk_per_trade", "max_risk_per_underlying"):
        if key in data:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise ApplicationError(
                    f"{key} must be a fraction of equity such as 0.01", field=key
                )
            try:
                d = Decimal(str(v))
            except InvalidOperation:
                raise ApplicationError(f"{key} must be a number, got {v!r}", field=key) from None
            if not d.is_finite() or not (Decimal("0.0001") <= d <= 1):
                raise ApplicationError(
                    f"{key} must be between 0.0001 and 1 (a fraction of equity), got {v}", field=key
                )  # noqa: E501
            values[key] = d.quantize(Decimal("0.0001"))
    if "max_new_trades_per_day" in data:
        v = data["max_new_trades_per_day"]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1000:
            raise ApplicationError(
                f"max_new_trades_per_day must be a whole number 0..1000, got {v!r}",
                field="max_new_trades_per_day",
            )  # noqa: E501
        values["max_new_trades_per_day"] = v
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ApplicationError("enabled must be true or false", field="enabled")
        values["enabled"] = data["enabled"]
    with transaction.atomic():
        obj = RiskConfig.objects.select_for_update().filter(strategy=strategy).first()
        before = config_snapshot(obj) if obj else None
        obj = obj or RiskConfig(strategy=strategy)
        for k, v in values.items():
            setattr(obj, k, v)
        obj.updated_by = user
        obj.save()
        config_audit_record(obj=obj, before=before, user=user, source=source)
    return obj
