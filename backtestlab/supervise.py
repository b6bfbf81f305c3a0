"""`make run`'s process manager: web, worker and beat under supervisord (``supervisord.conf``).

``python -m backtestlab.supervise`` fills in the configuration's environment (``HOST``,
``PORT``, ``WORKER_CONCURRENCY``, ``BACKTESTLAB_VAR_DIR`` and the venv's bin folder), prints the
lab's address and becomes supervisord (``exec``), so Ctrl-C or a SIGTERM reaches supervisord,
which stops every process with its children. A process that exits is started again; see the
configuration for the retries.

``python -m backtestlab.supervise listen`` is the event listener supervisord starts: it prints
every process's output with the process's name in front, and stops the lab when a process
could not be started ``startretries`` times in a row.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

BASE_DIR = Path(__file__).resolve().parent.parent
CONFIG = BASE_DIR / "supervisord.conf"
# The width of the longest program name in CONFIG ("worker"), so the "|" line up.
NAME_WIDTH = 6
# A line without its end yet is printed anyway once it is this long.
MAX_PARTIAL_LINE = 65536


def command() -> list[str]:
    """How to start the lab's processes (what ``make run`` runs, and the integration test)."""
    return [sys.executable, "-m", "backtestlab.supervise"]


def environment() -> dict[str, str]:
    """``os.environ`` with what ``supervisord.conf`` reads filled in and checked."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backtestlab.settings")
    from django.conf import settings

    from backtestlab.env import env_int, env_str

    return {
        **os.environ,
        "HOST": env_str("HOST", "127.0.0.1"),
        "PORT": str(env_int("PORT", 8000, minimum=1)),
        "WORKER_CONCURRENCY": str(env_int("WORKER_CONCURRENCY", 2, minimum=1)),
        # Where settings put it (BACKTESTLAB_VAR_DIR or var/): the pid file goes there too.
        "BACKTESTLAB_VAR_DIR": str(settings.VAR_DIR),
        "BACKTESTLAB_BIN": str(Path(sys.executable).parent),
    }


def run() -> None:
    env = environment()
    host = f"[{env['HOST']}]" if ":" in env["HOST"] else env["HOST"]
    url = f"http://{host}:{env['PORT']}"
    print(f"\n  BacktestLab: {url}/lab/   (admin: {url}/admin/, API docs: {url}/api/docs/)")
    print("  web, worker and beat under supervisord (supervisord.conf); Ctrl-C stops them.\n")
    sys.stdout.flush()
    supervisord = str(Path(sys.executable).parent / "supervisord")
    os.execve(supervisord, [supervisord, "-c", str(CONFIG)], env)


def _prefixed(name: str, line: str) -> str:
    return f"{time.strftime('%H:%M:%S')} {name:<{NAME_WIDTH}} | {line.rstrip(chr(13))}\n"


def _stop_supervisord() -> None:
    os.kill(os.getppid(), signal.SIGTERM)  # the listener's parent: stops everything and exits


def listen(
    stdin: TextIO, stdout: TextIO, out: TextIO, stop: Callable[[], None] = _stop_supervisord
) -> None:
    """Supervisord's event listener protocol on ``stdin``/``stdout``; the lines go to ``out``.

    PROCESS_LOG events carry whatever a process wrote (not whole lines): each process's
    unfinished line waits for its end. PROCESS_STATE_FATAL (a process that kept failing at
    start-up) calls ``stop``. Returns when supervisord closes ``stdin``.
    """
    from supervisor import childutils

    partial: dict[str, str] = {}
    while True:
        childutils.listener.ready(stdout)
        header = stdin.readline()
        if not header:
            return
        headers = childutils.get_headers(header)
        event = headers["eventname"]
        # A log event's payload is a header line and the data; a state event's only the line.
        about_line, _, data = stdin.read(int(headers["len"])).partition("\n")
        name = childutils.get_headers(about_line)["processname"]
        if event.startswith("PROCESS_LOG"):
            lines = (partial.pop(name, "") + data).split("\n")
            rest = lines.pop()
            if len(rest) >= MAX_PARTIAL_LINE:
                lines.append(rest)
            elif rest:
                partial[name] = rest
            out.write("".join(_prefixed(name, line) for line in lines))
        elif event == "PROCESS_STATE_FATAL":
            out.write(
                _prefixed(name, "could not be started (see above): stopping the lab")
                + _prefixed(name, "fix the cause, then `make run` again")
            )
            stop()
        out.flush()
        childutils.listener.ok(stdout)


def main(argv: list[str]) -> None:
    if argv == ["listen"]:
        # The protocol counts characters of UTF-8 text; no newline translation.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        listen(stdin, stdout, sys.stderr)
    elif not argv:
        run()
    else:
        sys.exit("usage: python -m backtestlab.supervise [listen]")


if __name__ == "__main__":
    main(sys.argv[1:])
