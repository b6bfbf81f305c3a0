"""`make run`'s launcher and its supervisord event listener (backtestlab/supervise.py).

The whole lab under supervisord, with processes killed, is tests/integration/test_make_run.py;
here the listener gets the events supervisord would send it (payloads made by supervisor's own
event classes) and the launcher's environment is checked.
"""

from __future__ import annotations

import io
import re
import sys
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from supervisor import events
from supervisor.states import ProcessStates

from backtestlab import supervise

PREFIXED = re.compile(r"^\d\d:\d\d:\d\d (\w+) +\| (.*)$", re.S)


def _process(name: str, pid: int) -> SimpleNamespace:
    """What supervisor's events read of a process: its name, its group's name, its pid."""
    config = SimpleNamespace(name=name)
    return SimpleNamespace(config=config, group=SimpleNamespace(config=config), pid=pid)


def _envelope(event: events.Event, serial: int) -> str:
    """The protocol's header line and payload; ``len`` counts characters, as supervisord's."""
    payload = event.payload()
    name = events.getEventNameByType(type(event))
    return (
        f"ver:3.0 server:supervisor serial:{serial} pool:logs poolserial:{serial} "
        f"eventname:{name} len:{len(payload)}\n{payload}"
    )


def _log(name: str, data: bytes) -> events.Event:
    return events.ProcessLogStdoutEvent(_process(name, 100), 100, data)


def _listen(*sent: events.Event) -> tuple[list[tuple[str, str]], str, list[str]]:
    """Run the listener over ``sent``; the printed (process, line) pairs, what it answered
    supervisord, and the stop requests."""
    stdin = io.StringIO("".join(_envelope(event, n) for n, event in enumerate(sent)), newline="")
    answers, out, stops = io.StringIO(), io.StringIO(), []
    supervise.listen(stdin, answers, out, stop=lambda: stops.append("stop"))
    printed = out.getvalue()
    assert printed == "" or printed.endswith("\n")
    lines = [PREFIXED.match(line).groups() for line in printed.split("\n")[:-1]]
    return lines, answers.getvalue(), stops


def test_each_process_line_is_printed_once_whole_with_its_name_in_front():
    lines, answers, stops = _listen(
        _log("web", b"Starting development server at http://127.0.0.1:8000/\r\nQuit the "),
        _log("worker", "worker1@vm ready — 2 processes × 1\n".encode()),
        _log("web", b"server with CONTROL-C.\n\n"),
        _log("beat", b"beat: Starting...\n"),
    )
    assert lines == [
        ("web", "Starting development server at http://127.0.0.1:8000/"),
        ("worker", "worker1@vm ready — 2 processes × 1"),
        ("web", "Quit the server with CONTROL-C."),
        ("web", ""),
        ("beat", "beat: Starting..."),
    ]
    # the protocol: READY before each event, an OK after it, READY for the next one
    assert answers == ("READY\n" + "RESULT 2\nOK") * 4 + "READY\n"
    assert stops == []


def test_a_line_without_an_end_waits_until_it_is_too_long_to_hold():
    half = "x" * (supervise.MAX_PARTIAL_LINE // 2)
    lines, _answers, _stops = _listen(_log("worker", half.encode()), _log("worker", half.encode()))
    assert lines == [("worker", half * 2)]
    lines, _answers, _stops = _listen(_log("worker", b"no end yet"))
    assert lines == []


def test_a_process_that_keeps_failing_at_start_up_stops_the_lab_with_a_message():
    fatal = events.ProcessStateFatalEvent(_process("web", 0), from_state=ProcessStates.BACKOFF)
    lines, answers, stops = _listen(
        _log("web", b"Error: That port is already in use.\n"), fatal, _log("beat", b"still\n")
    )
    assert stops == ["stop"]
    assert lines == [
        ("web", "Error: That port is already in use."),
        ("web", "could not be started (see above): stopping the lab"),
        ("web", "fix the cause, then `make run` again"),
        ("beat", "still"),
    ]
    assert answers == ("READY\n" + "RESULT 2\nOK") * 3 + "READY\n"


def test_the_launcher_fills_in_what_supervisord_conf_reads(monkeypatch):
    for name in ("HOST", "PORT", "WORKER_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    env = supervise.environment()
    assert (env["HOST"], env["PORT"], env["WORKER_CONCURRENCY"]) == ("127.0.0.1", "8000", "2")
    assert env["BACKTESTLAB_VAR_DIR"] == str(settings.VAR_DIR)
    assert env["BACKTESTLAB_BIN"] == str(supervise.Path(sys.executable).parent)
    assert supervise.command() == [sys.executable, "-m", "backtestlab.supervise"]
    for setting in ("%(ENV_HOST)s", "%(ENV_PORT)s", "%(ENV_WORKER_CONCURRENCY)s"):
        assert setting in supervise.CONFIG.read_text()

    monkeypatch.setenv("PORT", "8000x")
    with pytest.raises(ImproperlyConfigured, match="PORT must be an integer"):
        supervise.environment()
    monkeypatch.setenv("PORT", "8001")
    monkeypatch.setenv("WORKER_CONCURRENCY", "0")
    with pytest.raises(ImproperlyConfigured, match="WORKER_CONCURRENCY must be >= 1"):
        supervise.environment()
