from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from apps.optimization.gateway import metric_text
from apps.optimization.models import JobChunk, JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.ranking import DEFAULT_MIN_TRADES
from apps.optimization.services.jobs import (
    grid_plan_check,
    job_cancel,
    job_copy,
    job_start_checked,
)
from apps.optimization.services.validation import (
    DESCRIPTION_MAX_LENGTH,
    costs_validate,
    grid_validate,
)
from backtestlab.engine.metrics import METRIC_NAMES, METRICS
from backtestlab.engine.strategies import STRATEGIES
from backtestlab.errors import ApplicationError
from backtestlab.renderers import json_float

BADGE_COLOURS = {
    JobStatus.PENDING: "#6b7280",
    JobStatus.RUNNING: "#2563eb",
    JobStatus.SUCCEEDED: "#15803d",
    JobStatus.FAILED: "#b91c1c",
    JobStatus.CANCELLED: "#92400e",
}


class OptimizationJobForm(forms.ModelForm):
    """Admin job form: choices from the engine; the grid checked by the API's own service."""

    strategy = forms.ChoiceField(choices=[])
    objective = forms.ChoiceField(choices=[])
    description = forms.CharField(
        required=False, max_length=DESCRIPTION_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )

    class Meta:
        model = OptimizationJob
        fields = [
            "name", "description", "strategy", "datasets", "date_from", "date_to",
            "parameter_grid", "objective", "min_trades", "costs",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["strategy"].choices = [(k, s.label) for k, s in STRATEGIES.items()]
        self.fields["objective"].choices = [
            (name, info.label) for name, info in METRICS.items() if info.objective
        ]
        self.fields["min_trades"].required = False  # left empty: the default
        self.fields[
            "parameter_grid"
        ].help_text = 'JSON: {"fast": [5, 10, 20], "slow": {"start": 20, "stop": 200, "step": 20}}'

    def clean_min_trades(self):
        value = self.cleaned_data.get("min_trades")
        return DEFAULT_MIN_TRADES if value is None else value

    def clean(self):
        data = super().clean()
        if self.instance.pk and self.instance.enqueued_at is not None:
            raise forms.ValidationError("A started job cannot be edited; duplicate it instead.")
        datasets = data.get("datasets")
        if data.get("strategy") and datasets is not None and "parameter_grid" in data:
            try:
                data["parameter_grid"] = grid_validate(
                    data["strategy"], data["parameter_grid"], n_datasets=max(1, len(datasets))
                )
                # the combinations its constraints skip (refused when nothing would run)
                self.plan = grid_plan_check(data["strategy"], data["parameter_grid"])
                data["costs"] = costs_validate(data.get("costs") or None)
            except ApplicationError as exc:
                field = (exc.field or "").split(".")[0]
                self.add_error(field if field in self.fields else None, exc.message)
        return data


@admin.register(OptimizationJob)
class OptimizationJobAdmin(admin.ModelAdmin):
    form = OptimizationJobForm
    list_display = (
        "id", "name", "strategy", "status_badge", "progress_bar", "objective", "best_value",
        "created_by", "created_at", "lab_link",
    )  # fmt: skip
    list_display_links = ("id", "name")
    list_filter = ("status", "strategy", "objective")
    search_fields = ("name", "description")
    readonly_fields = (
        "status", "grid_combinations", "skipped_combinations", "total_runs", "completed_runs",
        "failed_runs", "chunks_total",
        "chunks_remaining", "best_params", "best_run", "error", "created_by",
        "rerun_of", "created_at", "enqueued_at", "started_at", "finished_at", "heartbeat_at",
    )  # fmt: skip
    filter_horizontal = ("datasets",)
    actions = ["start_or_rerun", "cancel", "duplicate", "compare"]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, job):
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px">{}</span>',
            BADGE_COLOURS.get(job.status, "#6b7280"),
            job.get_status_display(),
        )

    @admin.display(description="Progress")
    def progress_bar(self, job):
        pct = job.progress_pct
        return format_html(
            '<div style="width:140px;background:#e5e7eb;border-radius:4px" title="{} of {} runs">'
            '<div style="width:{}%;background:#2563eb;color:#fff;font-size:11px;'
            'border-radius:4px;padding:0 4px;white-space:nowrap">{}%</div></div>',
            job.done_runs,
            job.total_runs,
            pct,
            pct,
        )

    @admin.display(description="Best")
    def best_value(self, job):
        if not job.best_params:
            return "—"
        return metric_text(json_float(job.best_params["overall"]["value"]))

    @admin.display(description="Lab")
    def lab_link(self, job):
        return format_html('<a href="{}">open</a>', reverse("lab:job-detail", args=[job.id]))

    def get_deleted_objects(self, objs, request):
        # A job's runs and chunks go with it (its counters too); their own admins are view
        # only, which alone would make Django refuse to delete a job that has any.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        theirs = {str(m._meta.verbose_name) for m in (JobChunk, OptimizationRun)}
        perms_needed = {name for name in perms_needed if str(name) not in theirs}
        return deleted, counts, perms_needed, protected

    def render_change_form(self, request, context, *args, **kwargs):
        response = super().render_change_form(request, context, *args, **kwargs)
        adminform = context.get("adminform")
        if request.method == "POST" and adminform is not None and adminform.form.errors:
            response.status_code = 400  # as on the lab's launch form: refused, nothing stored
        return response

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.chunk_size = obj.chunk_size or 250
        plan = getattr(form, "plan", None)
        if plan is not None:
            obj.grid_combinations, obj.skipped_combinations = plan.combinations, plan.skipped
            obj.total_runs = plan.runs * len(form.cleaned_data["datasets"])
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            self.message_user(request, "Job saved. Use the action 'Start' to run it.")

    @admin.action(description="Start (pending) or re-run (finished) selected jobs")
    def start_or_rerun(self, request, queryset):
        for job in queryset:
            try:
                if job.status == JobStatus.PENDING and job.enqueued_at is None:
                    job_start_checked(job=job, user=request.user)
                    self.message_user(request, f"Started job {job.id}.")
                elif job.is_active:
                    self.message_user(
                        request, f"Job {job.id} is {job.status} already.", messages.WARNING
                    )
                else:
                    copy = job_copy(job=job, user=request.user, start=True, rerun=True)
                    self.message_user(request, f"Job {job.id} re-run as job {copy.id}.")
            except ApplicationError as exc:
                self.message_user(request, f"Job {job.id}: {exc.message}", messages.ERROR)

    @admin.action(description="Cancel selected jobs")
    def cancel(self, request, queryset):
        for job in queryset:
            try:
                job_cancel(job=job)
                self.message_user(request, f"Cancelled job {job.id}.")
            except ApplicationError as exc:
                self.message_user(request, f"Job {job.id}: {exc.message}", messages.WARNING)

    @admin.action(description="Duplicate selected jobs (not started)")
    def duplicate(self, request, queryset):
        for job in queryset:
            copy = job_copy(job=job, user=request.user, start=False)
            self.message_user(request, f"Job {job.id} duplicated as job {copy.id}.")

    @admin.action(description="Compare selected jobs (2 to 4) in the lab")
    def compare(self, request, queryset):
        ids = sorted(queryset.values_list("id", flat=True))
        if not 2 <= len(ids) <= 4:
            self.message_user(
                request, f"Select 2 to 4 jobs to compare ({len(ids)} selected).", messages.ERROR
            )
            return None
        return HttpResponseRedirect(f"{reverse('lab:jobs-compare')}?ids={','.join(map(str, ids))}")


@admin.register(OptimizationRun)
class OptimizationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "dataset", "params", "status", *METRIC_NAMES, "lab_link")
    list_filter = ("status", "job__strategy", "dataset")
    search_fields = ("job__name", "param_hash")
    list_select_related = ("job", "dataset")
    raw_id_fields = ("job",)
    show_full_result_count = False

    @admin.display(description="Lab")
    def lab_link(self, run):
        return format_html(
            '<a href="{}">equity</a>', reverse("lab:run-detail", args=[run.job_id, run.id])
        )

    # Runs are the job's results, counted in its counters: view only (no add, change, delete).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JobChunk)
class JobChunkAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "index",
        "dataset",
        "start",
        "stop",
        "status",
        "attempts",
        "worker",
    )
    list_filter = ("status",)
    raw_id_fields = ("job",)

    # Chunks are the workers' protocol (claims, attempts, the job's counters): view only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
