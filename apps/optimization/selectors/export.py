"""Every run of a job, streamed from a cursor as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from apps.optimization.models import OptimizationJob, OptimizationRun
from apps.optimization.selectors.slices import format_value
from backtestlab.engine.metrics import METRIC_NAMES
from backtestlab.renderers import json_number

EXPORT_CHUNK = 2000


def job_export_columns(job: OptimizationJob) -> list[str]:
    return ["run_id", "dataset", *job.grid, "status", *METRIC_NAMES]


def job_export_rows(job: OptimizationJob) -> Iterator[dict]:
    """Every run of the job as a dict (params in ``job.grid`` order), read through a cursor
    in chunks of EXPORT_CHUNK rows (a server-side cursor on PostgreSQL): memory stays flat
    whatever the number of runs."""
    names = dict(job.datasets.values_list("id", "name"))
    param_names = list(job.grid)
    rows = (
        OptimizationRun.objects.filter(job=job)
        .order_by("dataset_id", "grid_index")
        .values_list("id", "dataset_id", "params", "status", *METRIC_NAMES)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for run_id, dataset_id, params, status, *metrics in rows:
        yield {
            "run_id": run_id,
            "dataset": names.get(dataset_id, dataset_id),
            "params": {n: params.get(n) for n in param_names},
            "status": status,
            "metrics": dict(zip(METRIC_NAMES, metrics, strict=True)),
        }


def job_export_csv_lines(job: OptimizationJob) -> Iterator[str]:
    """The CSV export, one line at a time (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(job_export_columns(job))
    for row in job_export_rows(job):
        values = [row["run_id"], row["dataset"]]
        values += [format_value(v) if isinstance(v, bool) else v for v in row["params"].values()]
        values.append(row["status"])
        values += ["" if v is None else v for v in row["metrics"].values()]
        yield line(values)


def job_export_json_chunks(job: OptimizationJob) -> Iterator[str]:
    """The JSON export: one array of run objects, written piece by piece."""
    yield "["
    first = True
    for row in job_export_rows(job):
        obj = {
            "run_id": row["run_id"],
            "dataset": row["dataset"],
            "params": row["params"],
            "status": row["status"],
            **{n: v if v is None else json_number(v) for n, v in row["metrics"].items()},
        }
        yield ("\n" if first else ",\n") + json.dumps(obj)
        first = False
    yield "\n]\n"
