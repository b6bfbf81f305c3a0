"""Start and stop a real Celery worker process: used by the integration tests and ``bench``.

The worker runs in its own session, so its prefork children share one process group and
``kill()`` takes them all down at once with SIGKILL, the way a lost machine would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class WorkerError(RuntimeError):
    """The worker did not start (the message carries the tail of its log)."""


def celery_executable() -> str:
    """``celery`` from the running interpreter's environment (the project's venv)."""
    return str(Path(sys.executable).parent / "celery")


class WorkerProcess:
    """``celery -A backtestlab.celery worker`` as a child process; a context manager.

    ``env`` overrides are applied on top of ``os.environ`` (DATABASE_URL, CELERY_BROKER_URL,
    BACKTESTLAB_* ...). ``start()`` returns once the log says the worker is ready.
    """

    def __init__(
        self,
        name: str = "worker",
        *,
        concurrency: int = 2,
        env: Mapping[str, str] | None = None,
        log_dir: str | os.PathLike | None = None,
        ready_timeout: float = 60.0,
        cwd: str | os.PathLike | None = None,
        include: Sequence[str] = (),
    ):
        self.name = name
        # Extra modules the worker imports at start (``--include``), e.g. a test strategy.
        self.include = tuple(include)
        self.concurrency = concurrency
        self.env = {**os.environ, **(env or {})}
        self.ready_timeout = ready_timeout
        self.cwd = str(cwd or Path(__file__).resolve().parents[2])
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix="backtestlab-worker-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{time.strftime('%H%M%S')}-{os.getpid()}.log"
        self.proc: subprocess.Popen | None = None

    # What the log says once the process serves.
    ready_line = " ready."

    @property
    def nodename(self) -> str:
        """The name given with ``-n``; Celery expands ``%h`` to the host name."""
        return f"{self.name}@%h"

    def command(self) -> list[str]:
        return [
            celery_executable(),
            "-A",
            "backtestlab.celery",
            "worker",
            "-n",
            self.nodename,
            "--concurrency",
            str(self.concurrency),
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
            *(["--include", ",".join(self.include)] if self.include else []),
        ]

    def start(self) -> WorkerProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise WorkerError(
                    f"worker {self.name} exited with {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.ready_line in self._read_log(offset):
                return self
            time.sleep(0.1)
        self.kill()
        raise WorkerError(
            f"worker {self.name} was not ready after {self.ready_timeout:.0f} s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def pause(self) -> None:
        """SIGSTOP the whole process group: nothing it runs moves until :meth:`resume`."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and prefork children) and reap it."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL the group if it is still there after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Children outlive a parent that was killed or timed out; never leave them behind.
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def _read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class BeatProcess(WorkerProcess):
    """``celery -A backtestlab.celery beat`` (the database scheduler of the settings) as a
    child process: the real reaper schedule, for tests of recovery with the default settings."""

    ready_line = "beat: Starting..."

    def command(self) -> list[str]:
        return [celery_executable(), "-A", "backtestlab.celery", "beat", "-l", "info"]
