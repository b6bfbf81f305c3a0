"""Admin of the production side (imported by apps/strategies/admin.py).

ParameterChange and AuditEntry are read-only: they are the audit log. RiskConfig is edited
here with Django's change_riskconfig permission (add/delete likewise); every save or delete
writes an AuditEntry through the same service as the API.
"""

from django.contrib import admin

from apps.strategies.models import AuditEntry, PaperBook, ParameterChange, RiskConfig, RiskDecision
from apps.strategies.services.risk_configs import config_audit_record, config_snapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ParameterChange)
class ParameterChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "strategy", "symbol", "timeframe", "pattern", "kind", "dry_run",
                    "from_version", "to_version", "improvement_pct", "user", "source")  # fmt: skip
    list_filter = ("kind", "dry_run", "strategy", "source")
    search_fields = ("strategy", "symbol", "reason")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "action", "object_repr", "user", "source")
    list_filter = ("kind", "action", "source")


class AuditedConfigAdmin(admin.ModelAdmin):
    """Records every admin save and delete of a risk or approval config in the audit log."""

    def save_model(self, request, obj, form, change):
        before = None
        if change and obj.pk:
            old = type(obj).objects.filter(pk=obj.pk).first()
            before = config_snapshot(old) if old else None
        if hasattr(obj, "updated_by_id"):
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)
        config_audit_record(obj=obj, before=before, user=request.user, source="admin")

    def delete_model(self, request, obj):
        before = config_snapshot(obj)
        config_audit_record(obj=obj, before=before, user=request.user, source="admin",
                                     deleted=True)  # fmt: skip
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(RiskConfig)
class RiskConfigAdmin(AuditedConfigAdmin):
    list_display = ("strategy", "max_risk_per_trade", "max_risk_per_underlying",
                    "max_new_trades_per_day", "enabled", "updated_by", "updated_at")  # fmt: skip
    readonly_fields = ("updated_by", "updated_at")


@admin.register(PaperBook)
class PaperBookAdmin(admin.ModelAdmin):
    list_display = ("strategy", "symbol", "timeframe", "pattern", "enabled", "start_day",
                    "days_done", "equity")  # fmt: skip
    readonly_fields = ("days_done", "equity", "updated_at")


@admin.register(RiskDecision)
class RiskDecisionAdmin(ReadOnlyAdmin):
    list_display = ("opened_at", "book", "underlying", "estimated_max_loss_pct", "allowed",
                    "kind", "reason")  # fmt: skip
    list_filter = ("allowed", "kind")
