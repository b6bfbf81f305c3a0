"""Loaded by pytest as a plugin (``-p tests.env``) before Django is configured.

Tests must not depend on the developer's shell: a throwaway key, plain http, a private var dir.
"""

import os
import tempfile

# Tests must not depend on the developer's shell: a throwaway key and var dir.
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "k" * 40)
for _name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(_name, "0")  # tests and the browser talk plain http to 127.0.0.1
os.environ.setdefault("BACKTESTLAB_VAR_DIR", tempfile.mkdtemp(prefix="backtestlab-tests-"))
