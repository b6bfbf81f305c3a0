import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODULES = ("trades", "monte_carlo", "psychology", "walk_forward", "stress", "sensitivity",
           "regimes", "overfitting", "approval")  # fmt: skip


def test_the_evaluation_package_imports_without_django():
    code = (
        "; ".join(f"import backtestlab.engine.evaluation.{m}" for m in MODULES)
        + "; import sys; assert not any(m.startswith(('django', 'apps')) for m in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
