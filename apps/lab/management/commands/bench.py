"""``manage.py bench``: engine backtests/s, and persisted runs/s end to end through a worker."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Avg, F, Max, Min

from apps.lab.benchmarks import environment_heatmap_latency, results_latency
from apps.market.models import Dataset
from apps.market.services import synthetic_universe_create
from apps.market.storage import dataset_path
from apps.optimization.models import FINISHED_STATUSES, JobChunk, JobStatus, OptimizationJob
from apps.optimization.processes import WorkerProcess
from apps.optimization.services.jobs import job_create
from backtestlab.engine import synthetic
from backtestlab.engine.strategies import get_strategy
from backtestlab.engine.strategies.base import Costs
from backtestlab.engine.strategies.smc import DEFAULT_PARAMETER_GRID
from backtestlab.engine.sweep import grid_size, params_range
from backtestlab.engine.throughput import (
    limit_throughput,
    market_state_year_seconds,
    monte_carlo_seconds,
    numpy_strategy_throughput,
    sweep_throughput,
    walk_forward_ratio,
)

# 20 fast × 20 slow × 5 stops × 10 reward/risk ratios = 20,000 combinations; fast < slow skips
# 45 fast/slow pairs (2,250 combinations): 17,750 runs.
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
        self.results_bench()
        self.end_to_end_bench(concurrency=opts["concurrency"], timeout=opts["timeout"])

    def results_bench(self):
        self._migrate_if_needed()
        r = results_latency()
        self.stdout.write(
            f"results: heatmap partial {r['heatmap_ms']:.1f} ms (median agg "
            f"{r['heatmap_median_agg_ms']:.1f} ms; target < {r['heatmap_target_ms']:.0f}), "
            f"best table {r['best_table_ms']:.1f} ms (target < {r['best_table_target_ms']:.0f}), "
            f"sensitivity {r['sensitivity_ms']:.1f} ms ({r['runs']:,} runs, median of "
            f"{r['calls']} calls, database {r['database']})"
        )

    def engine_bench(self):
        result = sweep_throughput()
        self.stdout.write(
            f"engine: {result['backtests_per_second']:,.0f} backtests/s "
            f"({result['combinations']} sma_cross combinations on {result['bars']:,} bars "
            f"in {result['seconds'] * 1000:.1f} ms, best of 3, one core)"
        )
        limit = limit_throughput()
        self.stdout.write(
            f"engine vs limit: a hand-written compiled loop of the same rules and metrics does "
            f"{limit['backtests_per_second']:,.0f} backtests/s; the engine is "
            f"{result['backtests_per_second'] / limit['backtests_per_second']:.2f}x it "
            "(target >= 1.0; target >= 40,000 backtests/s)"
        )
        user = numpy_strategy_throughput()
        self.stdout.write(
            f"user strategy in plain numpy: {user['backtests_per_second']:,.0f} backtests/s "
            f"({user['combinations']} Donchian-breakout combinations on a year hourly; "
            "target >= 5,000)"
        )
        sma_ns = result["seconds"] / result["combinations"] / result["bars"] * 1e9
        for key, (data, companions, grid) in _carry_options_cases().items():
            self.stdout.write(_strategy_line(key, data, companions, grid, sma_ns))
        for key, (data, companions, grid) in _smc_market_state_cases().items():
            self.stdout.write(_strategy_line(key, data, companions, grid, sma_ns))
        self.market_state_year_bench()
        self.evaluation_bench()

    def market_state_year_bench(self):
        r = market_state_year_seconds()
        self.stdout.write(
            f"market_state: a year of minutes ({r['bars']:,} bars) prepared and backtested in "
            f"{r['first_seconds']:.3f} s, another parameter set on that context in "
            f"{r['again_seconds']:.3f} s (best of 3; target < 1 s each)"
        )

    def evaluation_bench(self):
        m = monte_carlo_seconds()
        self.stdout.write(
            f"monte carlo: {m['sims']:,} sims x {m['trades_per_sim']:,} trades in "
            f"{m['seconds']:.3f} s (best of 3; target < 1 s)"
        )
        w = walk_forward_ratio()
        self.stdout.write(
            f"walk-forward: {w['n_splits']}-fold of the {w['combinations']}-combination sma_cross "
            f"sweep {w['walk_forward_seconds'] * 1000:.0f} ms vs the sweep "
            f"{w['sweep_seconds'] * 1000:.0f} ms = {w['ratio']:.2f}x (target < 10x)"
        )

    def environment_heatmap_bench(self):
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
            job = job_create(
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


def _carry_options_cases() -> dict:
    """funding_carry and options_selector on their default data (one synthetic BTC year)."""
    minutes = synthetic.synthetic_candles("BTC", days=365)
    return {
        "funding_carry": (
            synthetic.resample(minutes, "1h"),
            {"funding": synthetic.synthetic_funding("BTC", days=365)},
            {
                "strategy_mode": ["simple", "composite"],
                "min_funding_rate": [0.0001, 0.00015, 0.0002, 0.00025, 0.0003],
                "exit_funding_rate": [0.0, 0.00005, 0.0001],
                "entry_threshold": [0.4, 0.45, 0.5, 0.55],
                "trend_ema_span": [3, 6, 12],
            },
        ),
        "options_selector": (
            synthetic.synthetic_environment("BTC", days=365),
            {"candles": synthetic.resample(minutes, "1d")},
            {
                "holding_days": [3, 5, 7, 10, 14],
                "decision_interval_days": [1, 2, 3, 5],
                "wing_sigmas": [1.0, 1.5, 2.0, 3.0],
                "min_vrp_30d": [0, 2.5, 5, 7.5],
                "max_adx_14d": [20, 25, 30, 40],
            },
        ),
    }


def _smc_market_state_cases() -> dict:
    """smc_zones on a BTC 1h year (the seed's 960-combination grid, all three patterns) and
    market_state on a BTC 1m year (525,600 bars; the volume profile is part of each prepare)."""
    minutes = synthetic.synthetic_candles("BTC", days=365)
    return {
        "smc_zones": (
            synthetic.resample(minutes, "1h"),
            None,
            {
                **DEFAULT_PARAMETER_GRID,
                "pattern_type": ["imbalance", "order_block", "liquidity_sweep"],
            },
        ),
        "market_state": (
            minutes,
            None,
            {
                "poc_distance_threshold": [0.25, 0.5, 1.0, 1.5],
                "momentum_threshold": [0.5, 1.5],
                "allow_balance_trades": [False, True],
            },
        ),
    }


def _strategy_line(key, data, companions, grid, sma_ns_per_bar: float) -> str:
    """Backtests/s of one strategy's sweep (fresh context each repeat, best of 3) and its
    cost per bar against sma_cross's."""
    strategy = get_strategy(key)
    full = strategy.parameter_space().validate_grid(grid, max_combinations=100_000)
    params = params_range(full, 0, grid_size(full))
    strategy.run_many(strategy.prepare(data, companions), params, Costs())  # compile, warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        strategy.run_many(strategy.prepare(data, companions), params, Costs())
        best = min(best, time.perf_counter() - started)
    ns_per_bar = best / len(params) / len(data) * 1e9
    return (
        f"engine: {len(params) / best:,.0f} backtests/s {key} ({len(params)} combinations on "
        f"{len(data):,} bars in {best * 1000:.1f} ms; {ns_per_bar:.1f} ns per bar = "
        f"{ns_per_bar / sma_ns_per_bar:.1f}x sma_cross)"
    )


def _broker() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]
