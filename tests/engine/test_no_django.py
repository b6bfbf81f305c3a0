import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every module of the engine, found on disk so that a new one is checked too.
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "backtestlab" / "engine").rglob("*.py")
)
CODE = (
    "import backtestlab.engine, backtestlab.engine.strategies, backtestlab.engine.sweep, "
    "backtestlab.engine.synthetic, backtestlab.engine.metrics, backtestlab.engine.simulate, "
    "backtestlab.engine.throughput, backtestlab.engine.indicators, backtestlab.engine.data; "
    f"import {', '.join(MODULES)}; "
    "import sys; "
    "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django'; "
    "assert not any(m == 'apps' or m.startswith('apps.') for m in sys.modules), 'apps'; "
    "assert 'backtestlab.settings' not in sys.modules, 'settings'"
)


def test_engine_imports_without_django():
    proc = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr


def test_engine_sources_never_mention_django_imports():
    engine = ROOT / "backtestlab" / "engine"
    for path in engine.rglob("*.py"):
        text = path.read_text()
        for bad in (
            "import django",
            "from django",
            "from apps",
            "import apps",
            "backtestlab.settings",
            "os.environ",
        ):
            assert bad not in text, f"{path}: {bad}"
