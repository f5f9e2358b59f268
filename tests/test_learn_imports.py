"""`agentrt.learn` is bookkeeping: it imports neither torch nor numpy."""

from __future__ import annotations

from fresh_process import run_fresh


def test_learn_imports_no_torch_and_no_numpy():
    script = (
        "import pkgutil, importlib\n"
        "import agentrt.learn as learn\n"
        "for m in pkgutil.iter_modules(learn.__path__):\n"
        "    importlib.import_module('agentrt.learn.' + m.name)\n"
        "print('ok')\n"
    )
    assert run_fresh(script, ("torch", "numpy")).strip() == "ok"
