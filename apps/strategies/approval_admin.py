"""Admin of the approval models (imported by apps/strategies/admin.py)."""

from django.contrib import admin

from apps.strategies.models import ApprovalConfig, StrategyApproval
from apps.strategies.production_admin import AuditedConfigAdmin


@admin.register(ApprovalConfig)
class ApprovalConfigAdmin(AuditedConfigAdmin):
    """The thresholds of the approval gates; the active row with the highest id is in force.
    Edited with Django's change_approvalconfig permission; every change is in the audit log."""

    list_display = ("name", "is_active", "min_trades", "min_years", "max_worst_dd_prod",
                    "min_psych_score_prod", "updated_at")  # fmt: skip
    list_filter = ("is_active",)


@admin.register(StrategyApproval)
class StrategyApprovalAdmin(admin.ModelAdmin):
    """Read-only: each row is a decision of the past (the history of a strategy). Not even
    deleted: the latest decision gates apply to production, so deleting one would change the
    stage in force without a trace."""

    list_display = ("strategy", "stage", "reason", "job", "run", "trigger", "created_by",
                    "created_at")  # fmt: skip
    list_filter = ("stage", "strategy", "trigger")
    search_fields = ("strategy", "reason")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
