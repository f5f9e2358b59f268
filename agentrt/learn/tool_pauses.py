"""`ToolPauses`: how long a conversation pauses for a tool, learned per tool name.

When a response ends in `tool_calls`, the server calls `response(workflow_id, tools,
now)`; when that workflow's next request arrives, `request(workflow_id, now)` learns the
gap for every tool of the pending response (tools called together all get the gap, which
is the slowest one's). A gap longer than `max_gap_s` is not learned (the client went
away, or a person answered) and a pending response older than that is forgotten;
`cancel` forgets one (last step, DELETE).

`samples(tools)` are the recent gaps of the slowest of the tools called (the pin TTL is
chosen over them, `learn.pin_value`); `expected_pause(tools)` is one duration: per tool
the larger of its EWMA and its `quantile` of recent gaps once it has `min_samples` gaps,
else `default_pause_s`; the maximum over the tools called, clipped to [0,
`max_pause_s`]. At most `max_tools` tool names are learned (others keep the default); at
most `max_pending` responses wait (the oldest is forgotten first).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from agentrt.learn.errors import LearnError
from agentrt.learn.stats import DEFAULT_ALPHA, DEFAULT_WINDOW, DelayStats


class ToolPauses:
    def __init__(
        self,
        *,
        default_pause_s: float = 5.0,
        max_pause_s: float = 60.0,
        max_gap_s: float = 300.0,
        quantile: float = 0.9,
        min_samples: int = 3,
        max_tools: int = 1024,
        max_pending: int = 100_000,
        alpha: float = DEFAULT_ALPHA,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if not 0.0 <= default_pause_s <= max_pause_s or not math.isfinite(max_pause_s):
            raise LearnError(
                f"need 0 <= default_pause_s <= max_pause_s (finite), got {default_pause_s!r} "
                f"and {max_pause_s!r}"
            )
        if not 0.0 < max_gap_s < math.inf:
            raise LearnError(f"max_gap_s must be a finite number > 0, got {max_gap_s!r}")
        if not 0.0 <= quantile <= 1.0:
            raise LearnError(f"quantile must be in [0, 1], got {quantile!r}")
        for name, value in (
            ("min_samples", min_samples),
            ("max_tools", max_tools),
            ("max_pending", max_pending),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LearnError(f"{name} must be an int >= 1, got {value!r}")
        DelayStats(alpha, window)  # checks alpha and window
        self.default_pause_s = default_pause_s
        self.max_pause_s = max_pause_s
        self.max_gap_s = max_gap_s
        self.quantile = quantile
        self.min_samples = min_samples
        self.max_tools = max_tools
        self.max_pending = max_pending
        self.alpha = alpha
        self.window = window
        self.tools: dict[str, DelayStats] = {}
        self._pending: OrderedDict[Hashable, tuple[float, tuple[str, ...]]] = OrderedDict()

    def response(self, workflow_id: Hashable, tool_names: Sequence[str], now: float) -> None:
        """A response of `workflow_id` ended in calls of `tool_names` at `now`."""
        tools = _checked_tools(tool_names)
        self._forget_old(now)
        self._pending.pop(workflow_id, None)
        self._pending[workflow_id] = (now, tools)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)

    def request(self, workflow_id: Hashable, now: float) -> float | None:
        """The workflow's next request arrived; returns the learned gap, or None when no
        response was pending (or the gap was too long to learn from)."""
        self._forget_old(now)
        pending = self._pending.pop(workflow_id, None)
        if pending is None:
            return None
        gap = max(0.0, now - pending[0])
        for tool in pending[1]:
            stats = self.tools.get(tool)
            if stats is None and len(self.tools) < self.max_tools:
                stats = self.tools[tool] = DelayStats(self.alpha, self.window)
            if stats is not None:
                stats.add(gap)
        return gap

    def cancel(self, workflow_id: Hashable) -> bool:
        """Forget a pending response (no next request will come)."""
        return self._pending.pop(workflow_id, None) is not None

    def pause(self, tool: str) -> float:
        """The pause learned for one tool (unclipped), or the default."""
        stats = self.tools.get(tool)
        if stats is None or stats.count < self.min_samples:
            return self.default_pause_s
        return max(stats.ewma, stats.quantile(self.quantile))

    def expected_pause(self, tool_names: Sequence[str]) -> float:
        """Seconds to pin a conversation whose response called `tool_names`."""
        tools = _checked_tools(tool_names)
        longest = max((self.pause(t) for t in tools), default=self.default_pause_s)
        return min(max(longest, 0.0), self.max_pause_s)

    def samples(self, tool_names: Sequence[str]) -> list[float]:
        """The recent gaps (clipped to `max_pause_s`) of the tool with the longest pause
        among `tool_names`; `[default_pause_s]` while it has fewer than `min_samples`."""
        tools = _checked_tools(tool_names)
        slowest = max(tools, key=self.pause, default=None)
        stats = self.tools.get(slowest) if slowest is not None else None
        if stats is None or stats.count < self.min_samples:
            return [self.default_pause_s]
        return [min(gap, self.max_pause_s) for gap in stats.recent]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _forget_old(self, now: float) -> None:
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            raise LearnError(f"now must be a finite number of seconds, got {now!r}")
        while self._pending:
            workflow_id, (at, _) = next(iter(self._pending.items()))
            if now - at <= self.max_gap_s:
                break
            del self._pending[workflow_id]

    # -- persistence (the shapes of learn/schema.py) ------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {tool: stats.to_dict() for tool, stats in self.tools.items()}

    def load_dict(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Adopt learned per-tool stats (a validated `to_dict`), replacing these tools'."""
        for tool, stats in data.items():
            self.tools[tool] = DelayStats.from_dict(stats)


def _checked_tools(tool_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tool_names, str) or not all(isinstance(t, str) and t for t in tool_names):
        raise LearnError(f"tool names must be a list of non-empty strings, got {tool_names!r}")
    return tuple(tool_names)
