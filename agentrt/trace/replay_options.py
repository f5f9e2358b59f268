"""What a replay is asked to do (`agentrt.trace.replay`): dispatch mode, time and token
scaling, the engine's queue bound, progress and per-call output."""

from __future__ import annotations

import math
from dataclasses import dataclass

from agentrt.trace.eligible import DISPATCH_MODES


@dataclass
class ReplayOptions:
    """A replay's options; a bad value raises `ValueError` naming it."""

    dispatch: str = "timestamp"
    speed: float = 1.0
    scale_tokens: float = 1.0
    progress: bool = True
    per_call: bool = False  # also return {call_id: prompt/output/cached tokens, times}
    label: str = "replay"  # the progress bar's description
    position: int = 0  # the progress bar's line (several replays side by side)
    max_waiting: int = 256  # requests queued in the engine at once; later ones queue here
    fast_forward: bool = True  # sim engines: pure-decode stretches in one call (same results)

    def __post_init__(self) -> None:
        if self.dispatch not in DISPATCH_MODES:
            raise ValueError(f"unknown dispatch {self.dispatch!r}; use one of {DISPATCH_MODES}")
        for name, value in (("speed", self.speed), ("scale_tokens", self.scale_tokens)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.max_waiting < 1:
            raise ValueError(f"max_waiting must be >= 1, got {self.max_waiting!r}")
