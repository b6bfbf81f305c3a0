"""Speed figures of the pages and the API, for ``manage.py bench``.

The synthetic tools need no database writes (the request is authenticated with an unsaved
user); the results figures create a 100,000-run job in bulk and delete it afterwards.
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
from rest_framework.test import APIRequestFactory, force_authenticate

from apps.lab import results_views
from apps.lab.api import EnvironmentHeatmapView
from apps.lab.results_views import best_table_columns, best_table_context
from apps.lab.views import BEST_TABLE_SIZE
from apps.market.models import Dataset
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from apps.optimization.selectors.jobs import job_best_runs, job_get_for_user
from backtestlab.engine import sweep
from backtestlab.engine.metrics import METRIC_NAMES, METRICS

TARGET_MS = 50.0
HEATMAP_3650_20x20 = {
    "underlying": "BTC",
    "x_metric": "vrp_30d",
    "y_metric": "adx_14d",
    "horizon_days": 3650,
    "decision_interval_days": 1,
    "x_start": -10,
    "x_step": 1.5,
    "x_points": 20,
    "y_start": 5,
    "y_step": 3.5,
    "y_points": 20,
}


def environment_heatmap_latency(*, calls: int = 20) -> dict:
    """Warm server time of a 3650-day, 20 x 20 ``POST /api/environment_heatmap``.

    One untimed call builds the cached universe (reported as ``cold_ms``); then ``calls``
    requests go through the DRF view (parsing, validation, engine, rendering) and the median
    is compared with the 50 ms target.
    """
    factory = APIRequestFactory()
    view = EnvironmentHeatmapView.as_view()
    user = get_user_model()(username="bench")

    def once() -> float:
        request = factory.post("/api/environment_heatmap", HEATMAP_3650_20x20, format="json")
        force_authenticate(request, user=user)
        started = time.perf_counter()
        response = view(request)
        response.render()
        elapsed = (time.perf_counter() - started) * 1000.0
        if response.status_code != 200:
            raise RuntimeError(f"environment heatmap answered {response.status_code}")
        return elapsed

    cold_ms = once()
    times = sorted(once() for _ in range(calls))
    median_ms = statistics.median(times)
    return {
        "name": "environment_heatmap 3650 days 20x20 (warm)",
        "calls": calls,
        "median_ms": round(median_ms, 2),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
        "max_ms": round(times[-1], 2),
        "cold_ms": round(cold_ms, 1),
        "target_ms": TARGET_MS,
        "ok": median_ms < TARGET_MS,
    }


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
    job = job_get_for_user(request.user, job_id)
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
