"""Admin actions on runs: apply to production (or dry-run) through the one apply service."""

from django.contrib import admin, messages

from apps.strategies.services.apply import run_apply_to_production
from backtestlab.errors import ApplicationError


def _apply(modeladmin, request, queryset, *, dry_run: bool) -> None:
    for run in queryset.select_related("job", "dataset"):
        try:
            answer = run_apply_to_production(
                run=run, user=request.user, dry_run=dry_run, source="admin",
                reason=f"admin action on run {run.id}",
            )  # fmt: skip
        except ApplicationError as exc:
            modeladmin.message_user(request, f"Run {run.id}: {exc.message}", messages.ERROR)
            continue
        key = f"{answer['strategy']} {answer['symbol']} {answer['timeframe']} {answer['pattern']}"
        if dry_run:
            modeladmin.message_user(
                request,
                f"Run {run.id} would make {key.strip()} v{answer['to_version']}: "
                f"changes {answer['diff']} ({improvement_text(answer['improvement_pct'])})",
            )
        else:
            modeladmin.message_user(
                request, f"Run {run.id} applied: {key.strip()} v{answer['version']}."
            )  # noqa: E501


@admin.action(description="Apply selected runs to production", permissions=["apply"])
def apply_to_production(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, dry_run=False)


@admin.action(
    description="Dry-run: what applying selected runs would change", permissions=["apply"]
)  # noqa: E501
def apply_dry_run(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, dry_run=True)


def improvement_text(improvement_pct) -> str:
    if improvement_pct is None:  # a zero or unbounded value on one side
        return "better; no % improvement defined"
    return f"{improvement_pct:+.1f} % better"
