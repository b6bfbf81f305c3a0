"""Speed figures of the synthetic tools, for ``manage.py bench``.

No database writes: the request is authenticated with an unsaved user.
"""

from __future__ import annotations

import statistics
import time

from django.contrib.auth import get_user_model
from rest_framework.test import APIRequestFactory, force_authenticate

from apps.lab.api import EnvironmentHeatmapView

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
