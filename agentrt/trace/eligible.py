"""When each call of a replay may be submitted: its *eligible time*, in seconds since the
replay started (ties: order in `records`).

- `timestamp` dispatch: its arrival time (relative to the first arrival) / `speed`;
- `dependency` dispatch: a call with parents, when its last parent finishes plus its think
  time / `speed` (parents not among `records` are not waited for); others, as timestamp.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from agentrt.trace.schema import CallRecord

DISPATCH_MODES = ("timestamp", "dependency")


class EligibleCalls:
    """The calls not yet eligible or not yet taken, by eligible time."""

    def __init__(self, records: Sequence[CallRecord], dispatch: str, speed: float) -> None:
        self._records = {r.call_id: r for r in records}
        self._order = {r.call_id: i for i, r in enumerate(records)}
        self._speed = speed
        self._children: dict[str, list[str]] = {}
        self._waiting_on: dict[str, int] = {}  # unfinished parents per call
        self._heap: list[tuple[float, int, str]] = []
        first_arrival = min((r.arrival_s for r in records), default=0.0)
        for order, r in enumerate(records):
            parents = [p for p in r.parents if p in self._records]
            if dispatch != "dependency":
                parents = []
            self._waiting_on[r.call_id] = len(parents)
            for p in parents:
                self._children.setdefault(p, []).append(r.call_id)
            if not parents:
                due = (r.arrival_s - first_arrival) / speed
                heapq.heappush(self._heap, (due, order, r.call_id))

    def __bool__(self) -> bool:
        """Whether some call has a known eligible time and was not taken yet."""
        return bool(self._heap)

    def next_due(self) -> float:
        """The earliest known eligible time (there must be one: check `bool(self)`)."""
        return self._heap[0][0]

    def take_due(self, elapsed: float) -> list[tuple[float, str]]:
        """Remove and return `(eligible time, call_id)` of the calls eligible by `elapsed`,
        earliest first."""
        due: list[tuple[float, str]] = []
        while self._heap and self._heap[0][0] <= elapsed:
            when, _, call_id = heapq.heappop(self._heap)
            due.append((when, call_id))
        return due

    def finished(self, call_id: str, elapsed: float) -> None:
        """`call_id` ended (completed or failed) at `elapsed`: a child whose last parent it
        was becomes eligible after its think time."""
        for child in self._children.get(call_id, ()):
            self._waiting_on[child] -= 1
            if self._waiting_on[child] == 0:
                due = elapsed + self._records[child].think_time_s / self._speed
                heapq.heappush(self._heap, (due, self._order[child], child))
