"""A Chrome / Perfetto trace (JSON `traceEvents`) of a run: one track per agent, one for
engine steps, one for KV transfers. Open it in https://ui.perfetto.dev or chrome://tracing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from agentrt.output_files import atomic_write_bytes


class Timeline:
    def __init__(self) -> None:
        self._tracks: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []

    def _tid(self, track: str) -> int:
        tid = self._tracks.get(track)
        if tid is None:
            tid = self._tracks[track] = len(self._tracks) + 1
            meta = {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": track}}
            self.events.append(meta)
        return tid

    def span(self, track: str, name: str, start_s: float, end_s: float, **args: Any) -> None:
        """A complete event on `track` from `start_s` to `end_s` (seconds since start)."""
        self.events.append(
            {
                "name": name,
                "ph": "X",
                "pid": 1,
                "tid": self._tid(track),
                "ts": start_s * 1e6,
                "dur": max(0.0, end_s - start_s) * 1e6,
                "args": args,
            }
        )

    def write(self, path: str | Path) -> None:
        """Write the trace atomically (the old file or the whole new one, never part)."""
        atomic_write_bytes(
            path, orjson.dumps({"traceEvents": self.events, "displayTimeUnit": "ms"})
        )

    def merge(self, events: list[dict[str, Any]], pid: int, name: str) -> None:
        """Add another timeline's events as process `pid` named `name` (one per policy)."""
        self.events.append(
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": name}}
        )
        self.events.extend({**event, "pid": pid} for event in events)
