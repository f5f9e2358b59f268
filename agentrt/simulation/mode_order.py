"""The order in which a comparison runs its modes, and the oracle's dependencies.

``oracle`` replays the true dependencies of a finished run, so a ``sync`` run that
records them goes first whenever ``oracle`` is asked for; the other modes follow in the
order asked. `run_modes` and `run_simulation` both run their modes through `run_in_order`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agentrt.scheduler.sim_modes import MODES, TrueDeps
from agentrt.simulation.result import SimResult

ALL_MODES = ("sync", "ooo", "oracle")

#: runs one mode on a fresh world: (mode, true_deps for oracle, record_deps) -> result
RunOne = Callable[[str, TrueDeps | None, bool], SimResult]


def expand_modes(mode: str) -> list[str]:
    """``all`` -> sync, ooo, oracle; otherwise the one mode (validated)."""
    if mode == "all":
        return list(ALL_MODES)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)} or all")
    return [mode]


def mode_order(modes: Iterable[str]) -> list[str]:
    """The modes to run, in run order: validated, each once, ``sync`` first when it or
    ``oracle`` is asked for (so it may add ``sync``)."""
    asked = list(dict.fromkeys(modes))
    for m in asked:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    if "sync" in asked or "oracle" in asked:
        return ["sync", *(m for m in asked if m != "sync")]
    return asked


def run_in_order(modes: Iterable[str], run_one: RunOne) -> dict[str, SimResult]:
    """Run ``modes`` with ``run_one`` in `mode_order`, ``oracle`` on the true dependencies
    ``sync`` recorded. Results keyed by mode, in the order asked (``sync`` only if asked)."""
    asked = list(dict.fromkeys(modes))
    out: dict[str, SimResult] = {}
    for m in mode_order(asked):
        if m == "oracle":
            out[m] = run_one(m, out["sync"].true_deps, False)
        else:
            out[m] = run_one(m, None, m == "sync" and "oracle" in asked)
    return {m: out[m] for m in asked}
