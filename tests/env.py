"""Loaded by pytest as a plugin (``-p tests.env``) before Django is configured.

Tests must not depend on the developer's shell: a throwaway key, plain http, a private var dir.
They leave nothing behind either: the session's folder (var dir, Hypothesis's storage, browser
screenshots) is removed when pytest ends, after every fixture, so after the worker processes
and the live server that use it have stopped. Tests that need a folder of their own use
pytest's ``tmp_path`` (kept only for failed tests, see ``tmp_path_retention_policy``).
"""

import os
import shutil
import tempfile
from pathlib import Path

SESSION_DIR = Path(tempfile.mkdtemp(prefix="backtestlab-tests-"))
(SESSION_DIR / "var").mkdir()

# Tests must not depend on the developer's shell: a throwaway key and var dir.
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "k" * 40)
for _name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(_name, "0")  # tests and the browser talk plain http to 127.0.0.1
os.environ.setdefault("BACKTESTLAB_VAR_DIR", str(SESSION_DIR / "var"))
# Hypothesis keeps a cache in ./.hypothesis by default: here it goes with the session.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(SESSION_DIR / "hypothesis"))


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
