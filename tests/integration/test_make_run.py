"""`make run`'s process manager on the embedded default (SQLite in WAL mode, kombu's filesystem
broker): a process that dies is started again and the lab keeps serving.

The lab is started exactly as `make run` starts it (``backtestlab.supervise.command()``:
supervisord with ``supervisord.conf``), in a var dir of its own, on a free port, with neither
DATABASE_URL nor CELERY_BROKER_URL. The test speaks to it over HTTP only, as a person or a
script would: a sweep created through the API, the job's lab page read with a logged-in
session. It SIGKILLs the worker's main process mid-job while it holds chunks (its pool
processes must follow it, not linger), then the web server, and checks that the lab keeps
serving, each process comes back, the job ends with exactly N distinct runs, and a SIGTERM
leaves no process behind.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backtestlab import supervise
from tests.integration.conftest import GRID_2000, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
USERNAME, PASSWORD = "operator", "operator-pw-123"
JOB_NAME = "make run fault matrix"
# GRID_2000 (10 x 10 x 4 x 5 sma_cross runs) over two months of minute candles, in chunks of 20:
# the job spans 100 messages, so the kill finds chunks done, held and queued even on a machine
# fast enough to run the whole job in seconds.
N_RUNS = 2000
CHUNK_SIZE = 20
SPAWNED = re.compile(r"spawned: '(\w+)' with pid (\d+)")
RECOVERY = re.compile(r"start-up recovery on worker1@\S+: re-queued (\d+) own chunks")
WORKER_READY = re.compile(r"^\d\d:\d\d:\d\d worker +\| .*worker1@\S+ ready\.$", re.M)


def _processes_in_groups(groups: set[int]) -> list[str]:
    """Live (not zombie) processes whose process group is one of ``groups``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _ppid, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) in groups and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


class Lab:
    """The lab under its process manager, started as `make run` starts it."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "lab.log"
        # Nothing of the test run's own stack (PostgreSQL, Redis) or of the developer's shell.
        inherited = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "DATASET_DIR"}
            and not key.startswith("BACKTESTLAB_")
        }
        self.env = {
            **inherited,
            "DEBUG": "1",  # as `make run`
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "BACKTESTLAB_VAR_DIR": str(root / "var"),
            # A chunk message the killed worker had taken from the queue folder but not yet
            # claimed dies with it (the chunks it held are re-queued by its successor): the
            # beat reaper sends such a chunk again after REQUEUE_PENDING_SECONDS; 10 s keeps
            # that case within the test's patience whatever the default.
            "BACKTESTLAB_REQUEUE_PENDING_SECONDS": "10",
            # 100 chunks of 20 runs: the job spans many messages, so "mid-job, a chunk held"
            # is a moment the test can see on a fast machine too.
            "BACKTESTLAB_CHUNK_SIZE": str(CHUNK_SIZE),
        }
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str, **env: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}{done.stderr}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:  # append: supervisord and its listener share it
            self.proc = subprocess.Popen(
                supervise.command(),
                cwd=BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _query(self, sql: str) -> list[tuple]:
        """Read the lab's SQLite file (read-only) as the lab's processes write it."""
        database = Path(self.env["BACKTESTLAB_VAR_DIR"]) / "backtestlab.sqlite3"
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def held_chunks(self) -> list[int]:
        """The chunks a worker holds (RUNNING)."""
        return [
            id_
            for (id_,) in self._query(
                "SELECT id FROM optimization_jobchunk WHERE status = 'running'"
            )
        ]

    def chunk_statuses(self) -> dict[str, int]:
        return dict(
            self._query("SELECT status, count(*) FROM optimization_jobchunk GROUP BY status")
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def pids(self, program: str) -> list[int]:
        """Every pid supervisord gave ``program``, in order."""
        return [int(pid) for name, pid in SPAWNED.findall(self.output()) if name == program]

    def wait_until(self, condition, *, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the lab stopped ({self.proc.returncode}) before {what}\n{self.tail()}"
                )
            time.sleep(0.1)
        pytest.fail(f"not {what} within {timeout:.0f} s\n{self.tail()}", pytrace=False)

    def tail(self, lines: int = 80) -> str:
        return "--- lab output (tail) ---\n" + "\n".join(self.output().splitlines()[-lines:])

    def logged_at(self, pattern: str, index: int) -> float:
        """When supervisord logged its ``index``-th line matching ``pattern`` (epoch seconds)."""
        stamps = re.findall(rf"^(\S+ \S+),(\d+) \w+ {pattern}", self.output(), re.M)
        stamp, millis = stamps[index]
        return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000

    def groups(self) -> set[int]:
        """supervisord's process group and each of its processes' (every one is a leader)."""
        pids = [int(pid) for _name, pid in SPAWNED.findall(self.output())]
        return {self.proc.pid, *pids} if self.proc else set(pids)

    def stop(self, timeout: float = 60) -> float:
        """SIGTERM, as Ctrl-C or `kill` of `make run`; returns how long the stop took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """Whatever is left (a failed test): SIGKILL every process group of the lab."""
        for group in self.groups():
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    yield lab
    if lab.proc is not None:
        if lab.proc.poll() is None:
            try:
                lab.stop()
            except subprocess.TimeoutExpired:
                pass
        lab.kill()


def _values(spec) -> list[float]:
    """A grid parameter's values: a list, or an inclusive ``start``/``stop``/``step`` range."""
    if isinstance(spec, dict):
        return [float(v) for v in range(spec["start"], spec["stop"] + 1, spec["step"])]
    return [float(v) for v in spec]


def _logged_in(url: str) -> requests.Session:
    """A browser-like session: the login page, its CSRF token, the form."""
    session = requests.Session()
    session.get(f"{url}/accounts/login/", timeout=10).raise_for_status()
    form = {
        "username": USERNAME,
        "password": PASSWORD,
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    }
    answer = session.post(f"{url}/accounts/login/", data=form, timeout=10)
    assert answer.url == f"{url}/lab/", answer.text[:500]
    return session


def _job_page_served(browser: requests.Session, url: str, job_id: int) -> bool:
    """The job's lab page answers 200 with the job on it."""
    try:
        page = browser.get(f"{url}/lab/jobs/{job_id}/", timeout=10)
    except requests.ConnectionError:
        return False
    return page.status_code == 200 and f"Job #{job_id} — {JOB_NAME}" in page.text


def test_make_run_restarts_a_killed_worker_and_web_and_the_job_completes(lab):
    # What `make run` does before its process manager: migrate, then a user and data.
    lab.manage("migrate", "--noinput")
    lab.manage(
        "make_synthetic", "--days", "60", "--symbols", "BTC", "--timeframes", "1h", "--with-minutes"
    )
    lab.manage(
        "createsuperuser",
        "--noinput",
        f"--username={USERNAME}",
        "--email=operator@example.com",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    lab.start()
    lab.wait_until(lambda: WORKER_READY.search(lab.output()), timeout=90, what="worker ready")
    web_pid, worker_pid, beat_pid = (lab.pids(name)[0] for name in ("web", "worker", "beat"))

    # The job starts once the worker has run `startsecs`: a crash after that is restarted at
    # once (sooner, it counts as a failed start and waits the backoff, 1 s the first time), and
    # a job started earlier may be done before then on a fast machine.
    lab.wait_until(
        lambda: "success: worker entered RUNNING" in lab.output(),
        timeout=90,
        what="the worker running startsecs",
    )
    browser = _logged_in(lab.url)
    token = requests.post(
        f"{lab.url}/api/token/", data={"username": USERNAME, "password": PASSWORD}, timeout=10
    ).json()["token"]
    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    datasets = api.get(f"{lab.url}/api/datasets/", timeout=10).json()["results"]
    (minutes,) = [d["id"] for d in datasets if d["kind"] == "candles" and d["timeframe"] == "1m"]
    created = api.post(
        f"{lab.url}/api/jobs/",
        json={
            "name": JOB_NAME,
            "strategy": "sma_cross",
            "datasets": [minutes],
            "parameter_grid": GRID_2000,
            "objective": "sharpe",
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.json()["total_runs"] == N_RUNS

    def job() -> dict:
        return api.get(f"{lab.url}/api/jobs/{job_id}/", timeout=10).json()

    # --- the worker SIGKILLed mid-job, holding chunks -----------------------------------------
    lab.wait_until(
        lambda: job()["completed_runs"] >= N_RUNS // 4 and lab.held_chunks(),
        timeout=120,
        what="the worker running, a quarter done and a chunk held",
    )
    os.kill(worker_pid, signal.SIGKILL)  # its main process: the pool must not outlive it
    killed = time.monotonic()
    lab.wait_until(
        lambda: not _processes_in_groups({worker_pid}),
        timeout=15,
        what="the killed worker's pool processes gone",
    )
    held = lab.held_chunks()  # what the dead worker held, before its successor recovers it
    assert len(RECOVERY.findall(lab.output())) == 1, lab.tail()
    at_kill = job()
    assert held and at_kill["status"] == "running" and at_kill["completed_runs"] < N_RUNS, at_kill

    checks = []  # the page, read over and over while the worker is away and coming back

    def worker_back_and_page_served() -> bool:
        checks.append(_job_page_served(browser, lab.url, job_id))
        return WORKER_READY.findall(lab.output())[1:] != []

    lab.wait_until(lambda: len(lab.pids("worker")) == 2, timeout=30, what="a new worker")
    respawned = lab.logged_at(r"spawned: 'worker'", 1) - lab.logged_at(r"exited: worker", 0)
    lab.wait_until(worker_back_and_page_served, timeout=60, what="the new worker ready")
    ready = time.monotonic() - killed
    lab.wait_until(
        lambda: job()["completed_runs"] > at_kill["completed_runs"],
        timeout=60,
        what="progress after the kill",
    )
    progressing = time.monotonic() - killed
    assert checks and all(checks), f"the job page failed {checks.count(False)} of {len(checks)}"

    new_worker = lab.pids("worker")[1]
    assert new_worker != worker_pid and _processes_in_groups({new_worker})
    # web and beat were not touched by the worker's crash
    assert lab.pids("web") == [web_pid] and lab.pids("beat") == [beat_pid]
    # the new worker, under the same node name, put the chunks the killed one held back
    assert RECOVERY.findall(lab.output()) == ["0", str(len(held))], lab.tail()

    finished = lab.wait_until(
        lambda: (state := job())["status"] in {"succeeded", "failed", "cancelled"} and state,
        timeout=150,
        what="the job finished",
    )
    assert finished["status"] == "succeeded", finished
    assert (finished["completed_runs"], finished["failed_runs"]) == (N_RUNS, 0), finished
    assert finished["progress_pct"] == 100
    assert _job_page_served(browser, lab.url, job_id)
    runs = api.get(f"{lab.url}/api/jobs/{job_id}/export/?format=json", timeout=60).json()
    params = [tuple(float(r["params"][name]) for name in GRID_2000) for r in runs]
    assert len(runs) == len({r["run_id"] for r in runs}) == N_RUNS
    assert {r["status"] for r in runs} == {"succeeded"}
    # every combination of the grid exactly once: none lost, none doubled by the restart
    assert sorted(params) == sorted(
        itertools.product(*(_values(spec) for spec in GRID_2000.values()))
    )
    assert lab.chunk_statuses() == {"done": N_RUNS // CHUNK_SIZE}

    # --- the web server SIGKILLed -------------------------------------------------------------
    os.killpg(web_pid, signal.SIGKILL)
    killed = time.monotonic()
    lab.wait_until(lambda: len(lab.pids("web")) == 2, timeout=30, what="a new web server")
    lab.wait_until(
        lambda: _job_page_served(browser, lab.url, job_id), timeout=60, what="serving again"
    )
    web_serving = time.monotonic() - killed
    assert not _processes_in_groups({web_pid})
    assert lab.pids("worker") == [worker_pid, new_worker] and lab.pids("beat") == [beat_pid]

    # Every process's output reached the terminal with its name in front.
    output = lab.output()
    for program in ("web", "worker", "beat"):
        assert re.search(rf"^\d\d:\d\d:\d\d {program} +\| \S", output, re.M), program

    # --- SIGTERM (Ctrl-C, or `kill` of make run) stops everything -----------------------------
    groups = lab.groups()
    stopped_in = lab.stop()
    assert lab.proc.returncode == 0, lab.tail()
    assert _processes_in_groups(groups) == [], "processes left behind after the stop"

    print(
        f"\nmeasured: worker SIGKILL -> new worker spawned {respawned:.2f} s, ready "
        f"{ready:.2f} s, job progressing {progressing:.2f} s (re-queued "
        f"{len(held)} held chunks at start-up); web SIGKILL -> serving "
        f"{web_serving:.2f} s; SIGTERM -> all stopped {stopped_in:.2f} s; "
        f"{len(checks)} page reads while the worker was away, all 200"
    )
