"""``manage.py bench``: engine backtests/s, and persisted runs/s end to end through a worker."""

from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Avg, F, Max, Min

from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.market.storage import dataset_path
from apps.optimization import services
from apps.optimization.models import FINISHED_STATUSES, JobChunk, JobStatus, OptimizationJob
from apps.optimization.processes import WorkerProcess

# 20 fast × 20 slow × 5 stops × 10 reward/risk ratios = 20,000 runs.
BENCH_GRID = {
    "fast": {"start": 5, "stop": 100, "step": 5},
    "slow": {"start": 20, "stop": 400, "step": 20},
    "sl_pct": [1, 2, 3, 4, 5],
    "rr": {"start": 1.0, "stop": 5.5, "step": 0.5},
}
BENCH_DATASET = "BTC 1h synthetic 365d seed42"  # what synthetic_universe_create names it


class Command(BaseCommand):
    help = (
        "Print the engine's backtests/s (900-combination sma_cross sweep) and the persisted "
        "runs/s of a ~20,000-run job through a real worker on the configured database and broker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
        parser.add_argument("--timeout", type=float, default=600, help="seconds for the job")
        parser.add_argument("--skip-engine", action="store_true", help="only the end-to-end part")

    def handle(self, *args, **opts):
        if not opts["skip_engine"]:
            self.engine_bench()
            self.environment_heatmap_bench()
        self.end_to_end_bench(concurrency=opts["concurrency"], timeout=opts["timeout"])

    def engine_bench(self):
        from backtestlab.engine.benchmark import sweep_throughput

        result = sweep_throughput()
        self.stdout.write(
            f"engine: {result['backtests_per_second']:,.0f} backtests/s "
            f"({result['combinations']} sma_cross combinations on {result['bars']:,} bars "
            f"in {result['seconds'] * 1000:.1f} ms, best of 3, one core)"
        )

    def environment_heatmap_bench(self):
        from apps.lab.benchmarks import environment_heatmap_latency

        r = environment_heatmap_latency()
        self.stdout.write(
            f"environment heatmap: {r['median_ms']:.2f} ms median server time, p95 "
            f"{r['p95_ms']:.2f} ms ({r['name']}, {r['calls']} calls; target < 50 ms)"
        )

    def _migrate_if_needed(self):
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stdout.write("applying migrations to the configured database ...")
            call_command("migrate", interactive=False, verbosity=0)

    def end_to_end_bench(self, *, concurrency: int, timeout: float):
        self._migrate_if_needed()
        created: list[Dataset] = []
        dataset = Dataset.objects.filter(name=BENCH_DATASET).first()
        if dataset is None:
            self.stdout.write("generating a synthetic year of BTC 1h candles ...")
            created = synthetic_universe_create(symbols=("BTC",), days=365, timeframes=("1h",))
            dataset = Dataset.objects.get(name=BENCH_DATASET)
        job = None
        worker = WorkerProcess("bench", concurrency=concurrency)
        try:
            worker.start()
            started = time.perf_counter()
            job = services.job_create(
                user=None,
                name="bench: sma_cross end to end",
                description="Created and deleted by manage.py bench.",
                strategy="sma_cross",
                dataset_ids=[dataset.id],
                parameter_grid=BENCH_GRID,
            )
            job = self._wait(job, worker, timeout)
            elapsed = time.perf_counter() - started
            if job.status != JobStatus.SUCCEEDED:
                raise CommandError(f"the bench job ended {job.status}: {job.error}")
            self._report(job, elapsed, concurrency)
        finally:
            worker.stop()
            if job is not None:
                OptimizationJob.objects.filter(id=job.id).delete()
            for ds in created:
                ds.delete()
                dataset_path(ds.file).unlink(missing_ok=True)

    def _wait(self, job, worker, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in FINISHED_STATUSES:
                return job
            if not worker.running:
                raise CommandError(f"the worker died; log {worker.log_path}:\n{worker.log_tail()}")
            time.sleep(0.05)
        raise CommandError(
            f"the bench job did not finish in {timeout:.0f} s "
            f"({job.completed_runs}/{job.total_runs} runs); worker log:\n{worker.log_tail()}"
        )

    def _report(self, job, elapsed, concurrency):
        chunks = JobChunk.objects.filter(job=job).aggregate(
            first_claim=Min("claimed_at"),
            last_finish=Max("finished_at"),
            mean=Avg(F("finished_at") - F("claimed_at")),
        )
        self.stdout.write(
            f"end to end: {job.total_runs / elapsed:,.0f} persisted runs/s "
            f"({job.total_runs:,} runs in {elapsed:.2f} s, {job.chunks_total} chunks of "
            f"{job.chunk_size}, {concurrency} worker processes, "
            f"database {connection.vendor}, broker {_broker()})"
        )
        lead = (chunks["first_claim"] - job.enqueued_at).total_seconds()
        busy = (chunks["last_finish"] - chunks["first_claim"]).total_seconds()
        self.stdout.write(
            f"  enqueue -> first claim {lead * 1000:.0f} ms; chunks ran for {busy:.2f} s; "
            f"mean chunk {chunks['mean'].total_seconds() * 1000:.0f} ms "
            f"(claim to marked done: the backtests; the insert of its runs follows)"
        )


def _broker() -> str:
    from django.conf import settings

    return settings.CELERY_BROKER_URL.split("://", 1)[0]
