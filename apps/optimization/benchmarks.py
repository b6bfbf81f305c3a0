"""Speed of the results pages on a 100,000-run job, for ``manage.py bench``.

Targets (PostgreSQL): the heatmap partial under 300 ms, the best table under 100 ms.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

from apps.market.models import Dataset
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.selectors import job_best_runs
from backtestlab.engine import sweep
from backtestlab.engine.metrics import METRIC_NAMES, METRICS

HEATMAP_TARGET_MS = 300.0
BEST_TABLE_TARGET_MS = 100.0
# smc_zones, 2 patterns × 25 × 20 × 50 × 2 = 100,000 runs; the heatmap is 25 × 20 cells.
BENCH_GRID = {
    "pattern_type": ["imbalance", "order_block"],
    "rr_target": [round(1.0 + 0.25 * i, 2) for i in range(25)],
    "sl_buffer_pct": [float(5 * i) for i in range(1, 21)],
    "min_zone_pct": [round(0.1 * i, 1) for i in range(1, 51)],
    "use_overlap": [True, False],
}


def _create_job(dataset: Dataset) -> OptimizationJob:
    job = OptimizationJob.objects.create(
        name="bench: results 100,000 runs",
        description="Created and deleted by manage.py bench (results latency).",
        strategy="smc_zones",
        parameter_grid=BENCH_GRID,
        objective="sharpe",
        status=JobStatus.SUCCEEDED,
    )
    job.datasets.set([dataset])
    grid = job.grid
    n = sweep.grid_size(grid)
    rng = np.random.default_rng(7)
    values = rng.normal(0.0, 1.0, size=(n, len(METRIC_NAMES)))
    with transaction.atomic():
        batch = []
        for gi, params in enumerate(sweep.params_range(grid, 0, n)):
            metrics = {name: float(values[gi, k]) for k, name in enumerate(METRIC_NAMES)}
            for name in ("n_trades", "max_consec_wins", "max_consec_losses"):
                metrics[name] = int(abs(metrics[name]) * 50)
            batch.append(
                OptimizationRun(
                    job=job,
                    dataset=dataset,
                    grid_index=gi,
                    params=params,
                    param_hash=sweep.param_hash(params),
                    **metrics,
                )
            )
            if len(batch) == 5000:
                OptimizationRun.objects.bulk_create(batch)
                batch = []
        OptimizationRun.objects.bulk_create(batch)
    best = job_best_runs(job=job, limit=1)
    OptimizationJob.objects.filter(id=job.id).update(
        total_runs=n, completed_runs=n, best_run=best[0] if best else None
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE optimization_optimizationrun")
    job.refresh_from_db()
    return job


def _timed(view, path: str, calls: int, **kwargs) -> tuple[float, float]:
    """(median ms, first-call ms) of an htmx GET through the view function."""
    factory = RequestFactory()
    user = get_user_model()(username="bench", is_staff=True)

    def once() -> float:
        request = factory.get(path, HTTP_HX_REQUEST="true")
        request.user = user
        request.htmx = HtmxDetails(request)
        started = time.perf_counter()
        response = view(request, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        return elapsed

    first = once()
    return statistics.median(once() for _ in range(calls)), first


def _best_table_view(request, job_id: int) -> HttpResponse:
    """The best table exactly as the job page renders it (selector + template), alone."""
    from apps.lab.results_views import best_table_columns, best_table_context
    from apps.lab.views import BEST_TABLE_SIZE, _job_for

    job = _job_for(request, job_id)
    context = {
        "job": job,
        "best_table": best_table_context(job, limit=BEST_TABLE_SIZE),
        "param_names": best_table_columns(job)[0],
        "fixed_params": best_table_columns(job)[1],
        "objective_label": METRICS[job.objective].label,
    }
    return HttpResponse(render_to_string("lab/_best_table.html", context))


def results_latency(*, calls: int = 7) -> dict:
    """Create a 100,000-run job (bulk), time the heatmap partial (max and median
    aggregation), the best table and the sensitivity partial, delete everything."""
    from apps.lab import results_views

    # The pages read no candles here (no production parameters to recompute), so a dataset
    # row without a file is enough, and nothing on disk is touched.
    now = timezone.now()
    dataset = Dataset.objects.create(
        name=f"bench: results placeholder {now:%Y%m%d%H%M%S%f}",
        symbol="BENCH",
        timeframe="1h",
        kind=Dataset.Kind.CANDLES,
        source=Dataset.Source.SYNTHETIC,
        start=now,
        end=now,
        rows=0,
        checksum="-",
        file="-",
    )
    job = None
    try:
        started = time.perf_counter()
        job = _create_job(dataset)
        insert_s = time.perf_counter() - started
        base = f"/lab/jobs/{job.id}"
        heatmap_ms, heatmap_first = _timed(
            results_views.job_heatmap, f"{base}/heatmap/", calls, job_id=job.id
        )
        median_ms, _ = _timed(
            results_views.job_heatmap, f"{base}/heatmap/?agg=median", calls, job_id=job.id
        )
        best_ms, best_first = _timed(_best_table_view, f"{base}/", calls, job_id=job.id)
        sensitivity_ms, _ = _timed(
            results_views.job_sensitivity, f"{base}/sensitivity/", calls, job_id=job.id
        )
    finally:
        if job is not None:
            OptimizationJob.objects.filter(id=job.id).update(best_run=None)
            OptimizationRun.objects.filter(job_id=job.id).delete()
            job.delete()
        dataset.delete()
    return {
        "name": "results of a 100,000-run smc_zones job (25 × 20 heatmap, 2 groups)",
        "runs": sweep.grid_size(BENCH_GRID),
        "database": connection.vendor,
        "calls": calls,
        "insert_s": round(insert_s, 1),
        "heatmap_ms": round(heatmap_ms, 1),
        "heatmap_first_ms": round(heatmap_first, 1),
        "heatmap_median_agg_ms": round(median_ms, 1),
        "best_table_ms": round(best_ms, 1),
        "best_table_first_ms": round(best_first, 1),
        "sensitivity_ms": round(sensitivity_ms, 1),
        "heatmap_target_ms": HEATMAP_TARGET_MS,
        "best_table_target_ms": BEST_TABLE_TARGET_MS,
        "ok": heatmap_ms < HEATMAP_TARGET_MS and best_ms < BEST_TABLE_TARGET_MS,
    }
