"""run_chunk survives a database that goes away mid-chunk: the chunk is given back and retried."""

import pytest
from django.db import OperationalError

from apps.optimization import tasks
from apps.optimization.models import JobChunk, JobStatus, OptimizationRun
from apps.optimization.services import sweeps
from apps.optimization.services.execution import chunk_release
from apps.optimization.tasks import run_chunk
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def _break_once(monkeypatch, target, name):
    """The first call raises the OperationalError a terminated connection raises."""
    original = getattr(target, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return calls


def test_a_chunk_whose_connection_dies_mid_run_is_released_and_retried(
    alice, datasets, monkeypatch
):
    job = make_job(alice, datasets[:1])
    chunk = job.chunks.get()
    _break_once(monkeypatch, sweeps, "chunk_runs")  # after the claim, before the commit

    assert run_chunk.apply(args=[chunk.id]).get() == "done"

    chunk.refresh_from_db()
    job.refresh_from_db()
    assert chunk.status == JobChunk.Status.DONE and chunk.attempts == 2
    assert OptimizationRun.objects.filter(job=job).count() == 12
    assert job.status == JobStatus.SUCCEEDED and job.completed_runs == 12


def test_a_retry_first_releases_what_a_failed_release_left_running(alice, datasets, monkeypatch):
    job = make_job(alice, datasets[:1])
    chunk = job.chunks.get()
    _break_once(monkeypatch, sweeps, "chunk_runs")
    releases = _break_once(monkeypatch, tasks, "chunk_release")  # the database still away

    assert run_chunk.apply(args=[chunk.id]).get() == "done"

    assert len(releases) == 2  # the failed one, then the retry's
    assert OptimizationRun.objects.filter(job=job).count() == 12
    assert JobChunk.objects.get(id=chunk.id).status == JobChunk.Status.DONE


def test_release_only_gives_back_a_running_chunk_of_that_worker(alice, datasets):
    job = make_job(alice, datasets[:1])
    chunk = job.chunks.get()
    JobChunk.objects.filter(id=chunk.id).update(status=JobChunk.Status.RUNNING, worker="w1@h")
    assert chunk_release(chunk_id=chunk.id, worker="w2@h") is False
    assert chunk_release(chunk_id=chunk.id, worker="w1@h") is True
    chunk.refresh_from_db()
    assert chunk.status == JobChunk.Status.PENDING and chunk.worker == ""
    JobChunk.objects.filter(id=chunk.id).update(status=JobChunk.Status.DONE, worker="w1@h")
    assert chunk_release(chunk_id=chunk.id, worker="w1@h") is False
