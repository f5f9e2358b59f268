"""Clocks the engine stamps request times with: wall time, or a virtual clock that the
cost-model runner advances by the modelled duration of each step."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A monotonic source of seconds. Only differences between readings are meaningful."""

    def now(self) -> float: ...

    def advance_to(self, t: float) -> float:
        """Return at `t` or later (at once if `t` has passed); returns the time then."""
        ...


class WallClock:
    """`time.perf_counter`, the engine's default."""

    def now(self) -> float:
        return time.perf_counter()

    def advance_to(self, t: float) -> float:
        """Sleep until `t` (wall time only passes)."""
        time.sleep(max(0.0, t - self.now()))
        return self.now()


class VirtualClock:
    """Simulated seconds, starting at `start`; moves only when told to, never backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` (>= 0); returns the new time."""
        if not seconds >= 0.0:  # also rejects NaN
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        self._now += seconds
        return self._now

    def advance_to(self, t: float) -> float:
        """Move forward to `t` if it is later than now (a no-op otherwise)."""
        if t > self._now:
            self._now = t
        return self._now
