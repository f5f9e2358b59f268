"""Run a script in a fresh interpreter (the repository's root as cwd), for tests of what
importing or running something loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(script: str, not_loaded: tuple[str, ...] = ()) -> str:
    """Run `script`; then fail if any of the top-level packages `not_loaded` was
    imported. Returns its stdout; a failure shows its stderr."""
    check = (
        f"\nimport sys as _sys\n"
        f"_loaded = sorted(m for m in _sys.modules if m.split('.')[0] in {not_loaded!r})\n"
        f"assert not _loaded, _loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script + check],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
