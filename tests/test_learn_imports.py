"""`agentrt.learn` is bookkeeping: it imports neither torch nor numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_learn_imports_no_torch_and_no_numpy():
    script = (
        "import sys, pkgutil, importlib\n"
        "import agentrt.learn as learn\n"
        "for m in pkgutil.iter_modules(learn.__path__):\n"
        "    importlib.import_module('agentrt.learn.' + m.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
