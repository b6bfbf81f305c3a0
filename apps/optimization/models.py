from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.market.models import Dataset
from apps.optimization.ranking import min_trades_field
from backtestlab.engine.strategies import STRATEGIES


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class OptimizationJob(models.Model):
    class Kind(models.TextChoices):
        GRID = "grid", "Grid sweep"
        MONTE_CARLO = "monte_carlo", "Monte Carlo"
        WALK_FORWARD = "walk_forward", "Walk-forward"

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GRID)
    strategy = models.CharField(max_length=50, help_text="Strategy key, e.g. sma_cross")
    datasets = models.ManyToManyField(Dataset, related_name="jobs")
    date_from = models.DateTimeField(null=True, blank=True)
    date_to = models.DateTimeField(null=True, blank=True)
    parameter_grid = models.JSONField(help_text="Validated grid: parameter name -> list of values")
    objective = models.CharField(max_length=40, default="sharpe")
    min_trades = min_trades_field()
    costs = models.JSONField(default=dict, blank=True)
    chunk_size = models.PositiveIntegerField(default=250)
    # Kind-specific settings (Monte Carlo: source run, sims, ...; walk-forward: splits, ...)
    # and results (Monte Carlo / walk-forward results, a sweep's cached overfitting figures);
    # see apps/optimization/evaluation_jobs.py.
    options = models.JSONField(default=dict, blank=True)
    evaluation = models.JSONField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True
    )
    total_runs = models.PositiveIntegerField(default=0)
    # A grid sweep's combinations per dataset, and how many of them break the strategy's
    # constraints (e.g. fast >= slow) and are skipped, never run: total_runs counts the rest.
    grid_combinations = models.PositiveIntegerField(default=0)
    skipped_combinations = models.PositiveIntegerField(default=0)
    completed_runs = models.PositiveIntegerField(default=0)
    failed_runs = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_remaining = models.PositiveIntegerField(default=0)

    best_params = models.JSONField(null=True, blank=True)
    best_run = models.ForeignKey(
        "OptimizationRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # job list: newest first, per owner
            models.Index(fields=["created_by", "-created_at"], name="job_owner_created"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def grid(self) -> dict[str, list]:
        """The grid in the strategy's declared parameter order.

        PostgreSQL's jsonb does not keep key order, and grid indexes decode mixed-radix in
        this order, so every consumer of the grid reads it through here.
        """
        strategy = STRATEGIES.get(self.strategy)
        names = strategy.parameter_space().names if strategy else sorted(self.parameter_grid)
        grid = {n: self.parameter_grid[n] for n in names if n in self.parameter_grid}
        grid.update({n: v for n, v in self.parameter_grid.items() if n not in grid})
        return grid

    @property
    def unit_label(self) -> str:
        """What one unit of progress is: a run, a simulation or a fold."""
        return {"monte_carlo": "simulations", "walk_forward": "folds"}.get(self.kind, "runs")

    @property
    def done_runs(self) -> int:
        return self.completed_runs + self.failed_runs

    @property
    def progress_pct(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 100.0
        if not self.total_runs:
            return 0.0
        return round(100.0 * self.done_runs / self.total_runs, 1)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class JobCompanion(models.Model):
    """The exact companion series (funding, environment, candles) a job read for one of its
    datasets, fixed when the job was created: every chunk, every recomputed run page uses it,
    and it cannot be deleted while the job exists."""

    job = models.ForeignKey(OptimizationJob, on_delete=models.CASCADE, related_name="companions")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16)
    companion = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="companion_of")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "dataset", "kind"], name="job_companion_unique_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.job.name}) reads it as the {self.kind} of {self.dataset}"


class JobChunk(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(OptimizationJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    start = models.PositiveIntegerField(help_text="First grid index (inclusive)")
    stop = models.PositiveIntegerField(help_text="Last grid index (exclusive)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # The worker's pool process computing it (its heartbeat lists the live ones).
    pid = models.PositiveIntegerField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A Monte Carlo / walk-forward chunk's partial result, combined by the job's finalize.
    result = models.JSONField(null=True, blank=True)
    # The last error of an attempt (kept when a retry succeeds: what happened, for the operator).
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["job_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="chunk_unique_index"),
        ]
        indexes = [
            # reaper: chunks by status and age (stale RUNNING, long-PENDING)
            models.Index(fields=["status", "claimed_at"], name="chunk_status_claimed"),
            # worker recovery at start-up: RUNNING chunks claimed by this host
            models.Index(fields=["worker", "status"], name="chunk_worker_status"),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} chunk {self.index} [{self.start}:{self.stop})"

    @property
    def size(self) -> int:
        return self.stop - self.start


class Worker(models.Model):
    """A live ``celery worker`` node, as its heartbeats tell (``tasks.Heartbeat``).

    A node that has not beaten for WORKER_LOST_SECONDS is presumed dead: the reaper gives its
    RUNNING chunks to others (the node name is all a chunk records of its worker)."""

    name = models.CharField(max_length=200, unique=True, help_text="Celery node name")
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    # Its live pool processes at the last heartbeat: a chunk held by another one was lost with
    # a process that died (killed, out of memory) while the worker itself lives on.
    pids = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OptimizationRun(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(OptimizationJob, on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    grid_index = models.PositiveIntegerField()
    params = models.JSONField()
    param_hash = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCEEDED)
    error = models.TextField(blank=True)

    total_return_pct = models.FloatField(null=True)
    cagr_pct = models.FloatField(null=True)
    sharpe = models.FloatField(null=True)
    sortino = models.FloatField(null=True)
    calmar = models.FloatField(null=True)
    max_drawdown_pct = models.FloatField(null=True)
    win_rate = models.FloatField(null=True)
    profit_factor = models.FloatField(null=True)
    expectancy_pct = models.FloatField(null=True)
    avg_win_pct = models.FloatField(null=True)
    avg_loss_pct = models.FloatField(null=True)
    n_trades = models.IntegerField(null=True)
    max_consec_wins = models.IntegerField(null=True)
    max_consec_losses = models.IntegerField(null=True)
    avg_trade_duration_h = models.FloatField(null=True)
    exposure_pct = models.FloatField(null=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "dataset_id", "grid_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "dataset", "param_hash"], name="run_unique_params_per_dataset"
            ),
        ]
        indexes = [
            # best table / heatmap for the default objectives, per job
            models.Index(fields=["job", "sharpe"], name="run_job_sharpe"),
            models.Index(fields=["job", "total_return_pct"], name="run_job_return"),
            # runs list filtered by status
            models.Index(fields=["job", "status"], name="run_job_status"),
            # results: the heatmap's and best table's slice (job, dataset), the sensitivity
            # lookup (grid_index IN ...) and the export's ORDER BY dataset_id, grid_index
            models.Index(fields=["job", "dataset", "grid_index"], name="run_job_dataset_grid"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of job {self.job_id}"


class Trial(models.Model):
    """The trial ledger: one row per parameter set of a strategy ever evaluated on a dataset
    (a dataset version: a re-import is a new dataset row), by any job - sweeps, walk-forward
    folds, searches. Its count per (strategy, dataset) is the number of trials the deflated
    Sharpe ratio deflates for: every configuration someone could have picked the best from.
    Evaluating the same parameter set again on the same data is not a new trial (the same
    numbers come out). Rows outlive their job."""

    strategy = models.CharField(max_length=50)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    param_hash = models.CharField(max_length=40)
    job = models.ForeignKey(
        OptimizationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The first job that evaluated it",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "dataset", "param_hash"], name="trial_unique_params"
            ),
        ]

    def __str__(self) -> str:
        return f"trial {self.param_hash[:8]} of {self.strategy} on dataset {self.dataset_id}"


# Scheduled sweeps live in their own module; imported here so Django finds them.
from apps.optimization.schedule_models import JobTemplate, TemplateFiring  # noqa: E402, F401
