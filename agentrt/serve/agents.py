"""What the server knows about the agents behind its requests, and the STE it derives.

Each request is one call of an agent: its agent key is its `agent_id` hint, else the
hash of its fixed prefix's blocks (`learn.AgentKey`; chat requests only, whose fixed
prefix is the system turn and tools). Its workflow is its `workflow_id` hint; without
one, a multi-turn conversation is its own workflow (keyed by its first non-system
message) and single-message requests share one anonymous stream.

- A workflow the client declared (`WorkflowBook`) moves its step graph;
- any other is learned (`learn.LearnedGraphs`): per workflow kind, which agent follows
  which, from the traffic.

After each change, the steps-to-execution of both (declared workflows each, the learned
ones as one map) are merged per agent (minimum) on one `HintBoard` and published to the
engine's KV manager. Agents the learner is not confident about are left out, and so are
evicted by recency.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from agentrt.learn import AgentKey, LearnedGraphs, LearnerConfig, ToolPauses, export_learned
from agentrt.serve.hints import RequestHints
from agentrt.serve.protocol import ChatMessage
from agentrt.serve.workflows import WorkflowBook

ANONYMOUS = "anonymous"
LEARNED = "learned"  # the learned graphs' entry on the hint board


@dataclass(frozen=True)
class Call:
    """One request as an agent call: its workflow and agent keys (None: untracked)."""

    workflow: str | None
    agent: str | None
    declared: bool
    last_step: bool = False


def conversation_key(messages: list[ChatMessage] | None) -> str | None:
    """A multi-turn conversation's key: its first non-system message; None for a
    single-message request (it joins the anonymous stream)."""
    if not messages:
        return None
    turns = [m for m in messages if m.role not in ("system", "developer")]
    if len(turns) < 2:
        return None
    first = turns[0]
    text = first.content if isinstance(first.content, str) else repr(first.content)
    return "conv:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class AgentTracker:
    def __init__(
        self,
        publish: Callable[[dict[str, float]], None],
        block_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish = publish
        self.clock = clock
        self.keys = AgentKey(block_size)
        self.declared = WorkflowBook(publish, clock=clock)
        # A transition seen once is acted on, so one round of an agent loop teaches the
        # server its graph; a wrong guess costs a needless prefetch, never tokens.
        self.learned = LearnedGraphs(LearnerConfig(min_observations=1))
        self.pauses = ToolPauses()
        self._learned_ste: dict[str, float] = {}

    # -- identity ---------------------------------------------------------------------------

    def call_of(
        self,
        hints: RequestHints,
        prefix_ids: list[int] | None,
        messages: list[ChatMessage] | None = None,
    ) -> Call:
        agent = self.keys.of(hints.agent_id, prefix_ids or ())
        workflow = hints.workflow_id or conversation_key(messages) or ANONYMOUS
        declared = self.declared.get(workflow) is not None
        return Call(workflow, agent, declared, hints.is_last_step)

    # -- lifecycle ----------------------------------------------------------------------------

    def started(self, call: Call) -> tuple[str | None, float | None]:
        """The call began. Returns why its declared graph could not take it (None: it
        did, or it has none), and for a learned call the steps the learner expected
        until this agent ran (0 or 1: it saw it coming; None: it had no estimate)."""
        if call.agent is None:
            return None, None
        if call.declared:
            return self.declared.request_started(call.workflow, call.agent), None
        now = self.clock()
        predicted = self._learned_ste.get(call.agent)
        self.pauses.request(call.workflow, now)
        self.learned.start(call.workflow, call.agent, now)
        self._publish_learned(now)
        return None, predicted

    def finished(self, call: Call, tool_names: list[str] | None = None) -> None:
        """The call's response ended (`tool_names`: the tools it called)."""
        if call.agent is None:
            return
        if call.declared:
            self.declared.request_finished(call.workflow, call.agent)
            return
        now = self.clock()
        self.learned.finish(call.workflow, call.agent, now)
        if call.last_step:
            self.learned.end(call.workflow, now)
            self.pauses.cancel(call.workflow)
        elif tool_names:
            self.pauses.response(call.workflow, tool_names, now)
        self._publish_learned(now)

    def export(self) -> dict:
        return export_learned(self.learned, self.pauses, block_size=self.keys.block_size)

    def _publish_learned(self, now: float) -> None:
        board = self.declared.board
        self._learned_ste = self.learned.agent_ste(now)
        board.publish(LEARNED, self._learned_ste)
        self.publish(board.agent_ste())


def prediction_outcome(steps: float | None) -> str:
    """How a learned call's start compares with what the learner expected."""
    if steps is None:
        return "unknown"
    return "hit" if steps <= 1 else "miss"
