"""A team strategy that cannot load stops the lab at start-up, naming the module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage_check(tmp_path, strategies: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEBUG": "1",
        "BACKTESTLAB_STRATEGIES": strategies,
        "PYTHONPATH": str(tmp_path),
        "BACKTESTLAB_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_module_stops_the_start_with_its_name(tmp_path):
    r = _manage_check(tmp_path, "team_missing_module")
    assert r.returncode != 0
    assert (
        "cannot load a strategy: BACKTESTLAB_STRATEGIES entry 'team_missing_module' failed to "
        "import: ModuleNotFoundError" in r.stderr
    )


def test_a_bad_space_stops_the_start_naming_the_class(tmp_path):
    (tmp_path / "team_bad_space.py").write_text(
        "from backtestlab.engine.parameters import Param, ParameterSpace\n"
        "from backtestlab.engine.strategies.base import Strategy\n"
        "class Broken(Strategy):\n"
        "    key = 'broken'\n"
        "    label = 'Broken'\n"
        "    parameters = ParameterSpace([Param('n', 'int', 0, 1, 10)])\n"
        "    def signals(self, ctx, p):\n"
        "        raise AssertionError\n"
    )
    r = _manage_check(tmp_path, "team_bad_space")
    assert r.returncode != 0
    assert "strategy team_bad_space.Broken: a default is outside its own bounds" in r.stderr


def test_a_good_module_joins_the_lab(tmp_path):
    r = _manage_check(tmp_path, "backtestlab_examples.rsi_reversion")
    assert r.returncode == 0, r.stderr
