"""Every paginated list endpoint caps page_size at 500 and stays a handful of queries there.

List endpoints are found in the URLconf (DRF viewset routes whose GET is ``list``), so a new
one is covered without touching this file; the runs of a job (a detail action) are added.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.market.models import Dataset
from apps.optimization.models import JobStatus, OptimizationJob, OptimizationRun
from backtestlab.api import CappedPagination

pytestmark = pytest.mark.django_db

ROWS = 600  # more than the cap
CAP = CappedPagination.max_page_size
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _list_routes(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from _list_routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            actions = getattr(p.callback, "actions", None) or {}
            if actions.get("get") == "list" and "format" not in p.pattern.regex.groupindex:
                yield "/" + (prefix + str(p.pattern)).replace("^", "").replace("$", "")


LIST_ROUTES = sorted(set(_list_routes()))


@pytest.fixture
def many(alice):
    datasets = Dataset.objects.bulk_create(
        Dataset(
            name=f"ds {i}",
            symbol="BTC",
            timeframe="1h",
            source=Dataset.Source.IMPORT,
            start=T0,
            end=T0,
            rows=1,
            checksum="0" * 64,
            file=f"x/{i}.parquet",
        )
        for i in range(ROWS)
    )
    jobs = OptimizationJob.objects.bulk_create(
        OptimizationJob(
            name=f"job {i}",
            strategy="sma_cross",
            parameter_grid={"fast": [5]},
            status=JobStatus.SUCCEEDED,
            created_by=alice,
        )
        for i in range(ROWS)
    )
    for job in jobs[:50]:
        job.datasets.add(datasets[0])
    OptimizationRun.objects.bulk_create(
        OptimizationRun(
            job=jobs[0],
            dataset=datasets[0],
            grid_index=i,
            params={"fast": i},
            param_hash=f"{i:040x}",
            sharpe=i / 100,
        )
        for i in range(ROWS)
    )
    return jobs[0]


def test_the_list_endpoints_were_found():
    assert {"/api/jobs/", "/api/datasets/"} <= set(LIST_ROUTES)


@pytest.mark.parametrize("page_size", [str(CAP), "100000", str(2**70)])
def test_page_size_is_capped_on_every_list_endpoint(
    alice, many, page_size, django_assert_max_num_queries
):
    client = APIClient()
    client.force_authenticate(alice)
    for path in [*LIST_ROUTES, f"/api/jobs/{many.id}/runs/"]:
        with django_assert_max_num_queries(10):
            response = client.get(path, {"page_size": page_size})
        assert response.status_code == 200, (path, response.content[:300])
        body = response.json()
        assert body["count"] >= ROWS, path
        assert len(body["results"]) == CAP, path
        assert body["next"], path


@pytest.mark.parametrize("page_size", ["0", "-5", "abc", "1e3", "", "null", "５"])
def test_a_nonsense_page_size_is_a_400_naming_it(alice, many, page_size):
    client = APIClient()
    client.force_authenticate(alice)
    for path in [*LIST_ROUTES, f"/api/jobs/{many.id}/runs/"]:
        response = client.get(path, {"page_size": page_size})
        assert response.status_code == 400, path
        assert response.json()["field"] == "page_size", path


def test_without_page_size_a_page_holds_the_default(alice, many):
    client = APIClient()
    client.force_authenticate(alice)
    for path in [*LIST_ROUTES, f"/api/jobs/{many.id}/runs/"]:
        assert len(client.get(path).json()["results"]) == CappedPagination.page_size, path


@pytest.mark.parametrize("page", ["0", "-1", "abc", "999999", str(2**70)])
def test_a_page_out_of_range_is_a_404_with_the_error_shape(alice, many, page):
    client = APIClient()
    client.force_authenticate(alice)
    for path in LIST_ROUTES:
        response = client.get(path, {"page": page})
        assert response.status_code == 404, (path, page)
        assert response.json()["ok"] is False
