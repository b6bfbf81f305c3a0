"""Admin of scheduled sweeps (imported by apps/optimization/admin.py). A template saved here
gets its PeriodicTask (weekly, Sunday 02:00 UTC) if it has none; edit the schedule on the
PeriodicTask (django-celery-beat's admin)."""

from django import forms
from django.contrib import admin

from apps.optimization.models import JobTemplate, TemplateFiring
from apps.optimization.services.schedules import template_schedule_ensure
from apps.optimization.services.validation import costs_validate, grid_validate, objective_validate
from backtestlab.errors import ApplicationError


class JobTemplateForm(forms.ModelForm):
    class Meta:
        model = JobTemplate
        fields = [
            "name", "strategy", "datasets", "rolling_days", "parameter_grid", "objective",
            "costs", "auto_apply", "min_improvement_pct", "owner", "periodic_task",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        try:
            if "strategy" in data and "parameter_grid" in data:
                n = max(1, len(data.get("datasets") or []))
                data["parameter_grid"] = grid_validate(
                    data["strategy"], data["parameter_grid"], n_datasets=n
                )
            if "objective" in data:
                data["objective"] = objective_validate(data["objective"])
            if data.get("costs") is not None:
                data["costs"] = costs_validate(data["costs"])
        except ApplicationError as exc:
            field = (exc.field or "").split(".")[0]
            self.add_error(field if field in self.fields else None, exc.message)
        return data


@admin.register(JobTemplate)
class JobTemplateAdmin(admin.ModelAdmin):
    form = JobTemplateForm
    list_display = ("name", "strategy", "objective", "rolling_days", "auto_apply",
                    "min_improvement_pct", "owner", "periodic_task")  # fmt: skip
    list_filter = ("strategy", "auto_apply")
    filter_horizontal = ("datasets",)
    raw_id_fields = ("periodic_task",)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        template_schedule_ensure(form.instance)


@admin.register(TemplateFiring)
class TemplateFiringAdmin(admin.ModelAdmin):
    list_display = ("template", "slot", "job", "apply_status", "error", "created_at")
    list_filter = ("apply_status", "template")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
