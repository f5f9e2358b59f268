"""What the server knows about the agents behind its requests, and the STE it derives.

Each request is one call of an agent: its agent key is its `agent_id` hint, else the
hash of its fixed prefix's blocks (`learn.AgentKey`; chat requests only, whose fixed
prefix is the system turn and tools). Its workflow is its `workflow_id` hint; without
one, a multi-turn conversation is its own workflow (keyed by its first non-system
message) and single-message requests share one anonymous stream.

- A workflow the client declared (`WorkflowBook`) moves its step graph;
- any other is learned (`learn.LearnedGraphs`): per workflow kind, which agent follows
  which, from the traffic.

A tool pause keeps KV pinned (`PinKeeper`, within the pin budget) for a time-to-live
chosen over the pauses seen for its tools (`ToolPauses`), when the reload it saves
outweighs the pool share it holds (`learn.pin_value`; or, with the `pause` rule, for the
expected pause): a chat answer that ends in tool calls pins its conversation (`pause`);
an agent of a declared workflow that the client reports paused (`tool_paused`, from
`PATCH /v1/workflows/{id}`) pins its latest answer. The next request of the
conversation, or of that agent in that workflow, releases the pin.

After each change, the steps-to-execution of both (declared workflows each, the learned
ones as one map) are merged per agent (minimum) on one `HintBoard` and published to the
engine's KV manager. Agents the learner is not confident about are left out, and so are
evicted by recency.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from agentrt.kvmanager.pins import ShedPin
from agentrt.learn import (
    AgentKey,
    LearnedGraphs,
    LearnerConfig,
    PinBook,
    ToolPauses,
    export_learned,
)
from agentrt.serve.hints import RequestHints
from agentrt.serve.pin_keeper import PinKeeper, nothing_shed
from agentrt.serve.protocol import ChatMessage
from agentrt.serve.workflows import DeclaredWorkflow, WorkflowBook

ANONYMOUS = "anonymous"
MAX_PROGRAMS = 100_000  # workflow start times remembered (least recently seen go first)
MAX_OPENINGS = 10_000  # opening calls of conversations remembered until they go on
LEARNED = "learned"  # the learned graphs' entry on the hint board


@dataclass(frozen=True)
class Call:
    """One request as an agent call: its workflow and agent keys (None: untracked), and
    its conversation's key (what a tool pause pins and the next request releases)."""

    workflow: str | None
    agent: str | None
    declared: bool
    conversation: str | None = None
    last_step: bool = False


def conversation_key(messages: list[ChatMessage] | None) -> str | None:
    """A conversation's key: its first non-system message (None without one)."""
    turns = [m for m in messages or () if m.role not in ("system", "developer")]
    if not turns:
        return None
    first = turns[0].content
    text = first if isinstance(first, str) else repr(first)
    return "conv:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def pause_key(workflow_id: str, agent: str) -> tuple[str, str]:
    """The pin key of an agent of a declared workflow in a tool pause (a tuple, so it
    never meets a conversation's string key)."""
    return (workflow_id, agent)


def _multi_turn(messages: list[ChatMessage] | None) -> bool:
    return sum(m.role not in ("system", "developer") for m in messages or ()) > 1


class AgentTracker:
    def __init__(
        self,
        publish: Callable[[dict[str, float]], None],
        block_size: int,
        pin: Callable[[Hashable, list[int], float], None],
        unpin: Callable[[Hashable], None],
        pin_budget_pages: int,
        engine_clock: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        pool_pages: int = 1,
        pin_rule: str = "cost",
        pins_shed: Callable[[], list[ShedPin]] = nothing_shed,
    ) -> None:
        """`pin(key, tokens, rank)`: pins shed highest rank first (the pin's end on
        `clock`); `pool_pages`: the device pool a pin takes its share of; `pin_rule`:
        `cost` (`pin_ttl`) or `pause` (every pause, for its expected length);
        `pins_shed`: the pins the engine took back (`PinKeeper`)."""
        self.publish = publish
        self.pauses = ToolPauses()
        self.pins = PinKeeper(
            pin, unpin, pin_budget_pages, block_size, pool_pages, self.pauses, pin_rule,
            pins_shed,
        )  # fmt: skip
        self.engine_clock = engine_clock
        self.program_starts: OrderedDict[str, float] = OrderedDict()
        self._last_start = -math.inf
        self.clock = clock
        self.keys = AgentKey(block_size)
        self.declared = WorkflowBook(publish, clock=clock)
        # A transition seen once is acted on, so one round of an agent loop teaches the
        # server its graph; a wrong guess costs a needless prefetch, never tokens.
        self.learned = LearnedGraphs(LearnerConfig(min_observations=1))
        self._learned_ste: dict[str, float] = {}
        # conversation -> (agent, start, end) of its opening call, until it goes on
        self._openings: OrderedDict[str, tuple[str, float, float]] = OrderedDict()
        self._started: dict[Call, float] = {}  # anonymous calls in flight: when they began

    # -- identity ---------------------------------------------------------------------------

    def call_of(
        self,
        hints: RequestHints,
        prefix_ids: list[int] | None,
        messages: list[ChatMessage] | None = None,
    ) -> Call:
        agent = self.keys.of(hints.agent_id, prefix_ids or ())
        conversation = hints.workflow_id or conversation_key(messages)
        workflow = hints.workflow_id or (conversation if _multi_turn(messages) else ANONYMOUS)
        declared = self.declared.get(workflow) is not None
        return Call(workflow, agent, declared, conversation, hints.is_last_step)

    def program_start(self, call: Call) -> float | None:
        """When the call's workflow began, on the engine's clock (None: the request
        stands alone), for the waiting queue's program-level order."""
        if call.workflow is None or call.workflow == ANONYMOUS:
            return None
        starts = self.program_starts
        start = starts.get(call.workflow)
        if start is None:
            if len(starts) >= MAX_PROGRAMS:
                starts.popitem(last=False)
            # workflows seen at one clock reading keep the order they were seen in
            start = max(self.engine_clock(), math.nextafter(self._last_start, math.inf))
            starts[call.workflow] = self._last_start = start
        else:
            starts.move_to_end(call.workflow)
        return start

    # -- tool pauses ----------------------------------------------------------------------

    def pause(self, call: Call, tool_names: list[str], tokens: list[int]) -> float | None:
        """A response of `call` ended in calls of `tool_names`: pin its conversation's KV
        (`tokens`: prompt and answer) for the pause expected for those tools, within the
        pin budget. Returns the Unix time the pin lasts until (None: not pinned)."""
        key = call.conversation
        if not tool_names or call.last_step or key is None:
            return None
        return self.pins.pin(key, tool_names, tokens, self.clock())

    def tool_paused(
        self, workflow: DeclaredWorkflow, agent: str, tool_names: list[str]
    ) -> tuple[float | None, str]:
        """The client reports that `agent` of the declared `workflow` waits for
        `tool_names`: pin its latest answer (prompt and output) as `pause` does.
        Returns the Unix time the pin lasts until (None: not pinned) and why."""
        tokens = workflow.answers.get(agent)
        if not tokens:
            return None, "not pinned: no answer of this agent in this workflow yet"
        key = pause_key(workflow.workflow_id, agent)
        now = self.clock()
        self.pauses.response(key, tool_names, now)  # its next request teaches the pause
        until = self.pins.pin(key, tool_names, tokens, now)
        return until, "pinned" if until is not None else "not pinned: over the pin budget"

    @property
    def pin_book(self) -> PinBook:
        return self.pins.book

    @property
    def pin_rule(self) -> str:
        return self.pins.pin_rule

    @pin_rule.setter
    def pin_rule(self, rule: str) -> None:
        self.pins.pin_rule = rule

    def measured(self, ttft_s: float, missed_tokens: int) -> None:
        """A request did not find `missed_tokens` prompt tokens on the device and saw
        its first token after `ttft_s` (`PinKeeper.measured`)."""
        self.pins.measured(ttft_s, missed_tokens)

    def release_pins(self, keys: list[Hashable]) -> None:
        self.pins.release(keys)

    # -- lifecycle ----------------------------------------------------------------------------

    def started(self, call: Call) -> tuple[str | None, float | None]:
        """The call began. Returns why its declared graph could not take it (None: it
        did, or it has none), and for a learned call the steps the learner expected
        until this agent ran (0 or 1: it saw it coming; None: it had no estimate)."""
        now = self.clock()
        if call.conversation is not None:
            self.pauses.request(call.conversation, now)  # learns the pause it ends
            self.pins.returned(call.conversation)  # (the engine ends it: `Job.pin_key`)
        if call.declared and call.agent is not None:
            key = pause_key(call.workflow, call.agent)
            self.pauses.request(key, now)
            self.release_pins([key])
        self.pins.expire(now)
        if call.agent is None:
            return None, None
        if call.declared:
            return self.declared.request_started(call.workflow, call.agent), None
        if self._continues_an_opening(call):
            self._publish_learned(now)
        predicted = self._learned_ste.get(call.agent)
        if call.workflow == ANONYMOUS and call.conversation is not None:
            self._started[call] = now
        # the anonymous stream is a kind of its own (its "transitions" are only arrival
        # order), so it does not blur what conversations of the same first agent do
        kind = ANONYMOUS if call.workflow == ANONYMOUS else None
        self.learned.start(call.workflow, call.agent, now, kind=kind)
        self._publish_learned(now)
        return None, predicted

    def _continues_an_opening(self, call: Call) -> bool:
        """A multi-turn conversation the learner does not track yet whose opening
        (single-message) call it saw: that call becomes the workflow's first, so the
        transition from the opening agent is learned (the opening itself went to the
        anonymous stream, before the conversation showed it goes on)."""
        if call.workflow in (ANONYMOUS, None) or self.learned.kind_of(call.workflow):
            return False
        opening = self._openings.pop(call.conversation, None)
        if opening is None:
            return False
        agent, start, end = opening
        self.learned.start(call.workflow, agent, start)
        self.learned.finish(call.workflow, agent, end)
        return True

    def finished(self, call: Call, tool_names: list[str] | None = None) -> None:
        """The call's response ended (`tool_names`: the tools it called)."""
        now = self.clock()
        if call.conversation is not None:
            if call.last_step:
                self.pauses.cancel(call.conversation)
            elif tool_names:
                self.pauses.response(call.conversation, tool_names, now)
        if call.agent is None:
            return
        if call.declared:
            self.declared.request_finished(call.workflow, call.agent)
            return
        self.learned.finish(call.workflow, call.agent, now)
        began = self._started.pop(call, now)
        if call.last_step:
            self.learned.end(call.workflow, now)
        elif call.workflow == ANONYMOUS and call.conversation is not None:
            openings = self._openings
            if len(openings) >= MAX_OPENINGS:
                openings.popitem(last=False)
            openings[call.conversation] = (call.agent, began, now)
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
