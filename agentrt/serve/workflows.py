"""Declared workflows of the server: step graphs whose steps-to-execution drive the KV cache.

A client declares a workflow's `StepGraph` (`POST /v1/workflows`), and its progress
moves the graph's state: explicitly (`PATCH`: agents started and finished), and, unless
it was declared with `progress="reports"` (the client reports every start and finish,
as agentrt's runtime does), by its own requests (a request whose hints name the
workflow and one of its agents starts that agent; the end of its response finishes it).
After every change the workflow's steps-to-execution (`agentrt.graph.ste`) are
published to a `HintBoard`, whose per-agent minimum over live workflows goes to the
engine's KV manager, as the in-process runtime does. KVFlow's own `POST /v1/update`
body publishes steps-to-execution directly.

Everything here is soft: a progress report the graph cannot take (an agent that is not
ready, an unknown name) is ignored with a reason, never an error for the request that
carried it. Workflows idle for `idle_ttl_s` are dropped.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentrt.graph.errors import WorkflowStateError
from agentrt.graph.ste import ste_json, steps_to_execution
from agentrt.graph.step_graph import StepGraph
from agentrt.graph.workflow_state import WorkflowState
from agentrt.scheduler.hints import HintBoard

Publish = Callable[[dict[str, float]], None]
PROGRESS = ("requests", "reports")


class WorkflowError(ValueError):
    """A declaration or report the server refuses (400 for the request that sent it)."""


@dataclass
class DeclaredWorkflow:
    workflow_id: str
    graph: StepGraph
    state: WorkflowState
    touched: float
    ste: dict[str, float] = field(default_factory=dict)
    # agents whose request ended: finished in the state once the next request shows
    # which way control went (a loop back or the forward edges)
    handing_off: list[str] = field(default_factory=list)
    # each agent's latest answer (prompt and output tokens): what a tool pause pins
    answers: dict[str, list[int]] = field(default_factory=dict)
    # "requests": its requests move the graph too; "reports": only PATCH reports do
    progress: str = "requests"

    def describe(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "object": "workflow",
            "progress": self.progress,
            "agents": self.graph.agents,
            "ready": sorted(self.state.ready),
            "running": sorted(self.state.running),
            "finished": self.state.finished,
            "steps_to_execution": {a: ste_json(s) for a, s in self.ste.items()},
        }


def graph_from_body(body: Mapping[str, Any]) -> StepGraph:
    """A `StepGraph` from `{"edges": [[src, dst] | [src, dst, max_iterations], ...],
    "agents": [name | {"name", "join", "max_visits"}, ...]}` (agents optional: taken from
    the edges) or `{"adjacency": {src: [dst, ...] | {dst: bound}}}`."""
    from agentrt.graph.agent_spec import AgentSpec

    try:
        agents = None
        if "agents" in body:
            agents = []
            for a in body["agents"]:
                if isinstance(a, str):
                    agents.append(a)
                else:
                    agents.append(
                        AgentSpec(
                            a["name"], join=a.get("join", "and"), max_visits=a.get("max_visits")
                        )
                    )
        if "adjacency" in body:
            return StepGraph.from_dict(body["adjacency"], agents)
        if "edges" in body:
            return StepGraph.from_edges(body["edges"], agents)
        if agents:
            graph = StepGraph()
            for a in agents:
                graph.add_agent(a)
            return graph.validate()
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkflowError(f"not a valid step graph: {exc}") from None
    raise WorkflowError("a workflow needs `edges`, `adjacency` or `agents`")


class WorkflowBook:
    """The server's declared workflows and the hint board their STE goes through."""

    def __init__(
        self,
        publish: Publish,
        max_workflows: int = 10_000,
        idle_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish = publish
        self.max_workflows = max_workflows
        self.idle_ttl_s = idle_ttl_s
        self.clock = clock
        self.board = HintBoard()
        self.declared: dict[str, DeclaredWorkflow] = {}

    # -- declared graphs ----------------------------------------------------------------

    def declare(
        self, graph: StepGraph, workflow_id: str | None = None, progress: str = "requests"
    ) -> DeclaredWorkflow:
        """Hold `graph` as workflow `workflow_id` (a fresh id when None); `progress`:
        "requests" (its requests move it too) or "reports" (only `report` does)."""
        if progress not in PROGRESS:
            raise WorkflowError(f"progress must be one of {PROGRESS}, got {progress!r}")
        self.expire()
        workflow_id = workflow_id or f"wf-{secrets.token_hex(8)}"
        if workflow_id not in self.declared and len(self.declared) >= self.max_workflows:
            raise OverflowError(f"the server holds {self.max_workflows} workflows already")
        workflow = DeclaredWorkflow(workflow_id, graph, WorkflowState(graph), self.clock())
        workflow.progress = progress
        self.declared[workflow_id] = workflow
        self._changed(workflow)
        return workflow

    def get(self, workflow_id: str) -> DeclaredWorkflow | None:
        self.expire()
        return self.declared.get(workflow_id)

    def report(
        self,
        workflow: DeclaredWorkflow,
        started: list[str] = (),
        finished: list[str | Mapping[str, Any]] = (),
    ) -> None:
        """Apply a progress report: agents that started, then agents that finished
        (`{"agent": name, "take": [successors]}` picks OR-branches and loops). Raises
        `WorkflowError` (nothing applied) if the graph cannot take it."""
        trial = workflow.state.copy()
        done: set[str] = set()
        try:
            for agent in started:
                trial.start(agent)
            for item in finished:
                agent = item if isinstance(item, str) else item["agent"]
                trial.finish(agent, None if isinstance(item, str) else item.get("take"))
                done.add(agent)
        except (WorkflowStateError, KeyError, TypeError, ValueError) as exc:
            raise WorkflowError(f"progress not applied: {exc}") from None
        workflow.state = trial
        workflow.handing_off = [a for a in workflow.handing_off if a not in done]
        self._changed(workflow)

    def delete(self, workflow_id: str) -> bool:
        workflow = self.declared.pop(workflow_id, None)
        self.board.end(workflow_id)
        self.publish(self.board.agent_ste())
        return workflow is not None

    # -- requests -------------------------------------------------------------------------

    def request_started(self, workflow_id: str | None, agent: str | None) -> str | None:
        """A request of `agent` in `workflow_id` began: hand control on from the agents
        whose requests ended (along their forward edges, and along a loop back to `agent`
        when the graph has one with runs left), then start `agent` if it is ready.
        Returns why it could not, if so (the request goes on regardless)."""
        workflow = self.get(workflow_id) if workflow_id else None
        if workflow is None or agent is None:
            return None
        workflow.touched = self.clock()
        state = workflow.state
        if workflow.progress == "reports":  # the client reported the agent's start
            return None if agent in state.running else "the agent is not running in its graph"
        for done in workflow.handing_off:
            take = list(workflow.graph.successors(done))
            if agent not in take and state.can_take(done, agent):
                take.append(agent)
            with contextlib.suppress(WorkflowStateError, KeyError):  # a PATCH finished it
                state.finish(done, take)
        workflow.handing_off.clear()
        why = None
        if agent not in state.running:
            try:
                state.start(agent)
            except (WorkflowStateError, KeyError) as exc:
                why = f"not applied to the declared graph: {exc}"
        self._changed(workflow)
        return why

    def answered(self, workflow_id: str | None, agent: str | None, tokens: list[int]) -> None:
        """A request of `agent` in `workflow_id` answered: `tokens` (its prompt and
        output) are the KV a tool pause of the agent keeps. Only declared workflows."""
        workflow = self.declared.get(workflow_id) if workflow_id else None
        if workflow is not None and agent is not None:
            workflow.answers[agent] = tokens

    def request_finished(self, workflow_id: str | None, agent: str | None) -> None:
        """A request of `agent` ended. It stays running in the graph until the
        workflow's next request shows where control went (`request_started`)."""
        workflow = self.declared.get(workflow_id) if workflow_id else None
        if workflow is None or agent is None or agent not in workflow.state.running:
            return
        workflow.touched = self.clock()
        if workflow.progress == "requests" and agent not in workflow.handing_off:
            workflow.handing_off.append(agent)

    # -- KVFlow's update ------------------------------------------------------------------

    def kvflow_update(self, body: Mapping[str, Any]) -> dict[str, float]:
        """KVFlow's `POST /v1/update`: `agent_data` (agent -> steps-to-execution) or
        `timestep_data` (step -> agents) with `timestep_cnt` (the current step). Replaces
        what the same `workflow_id` (default `kvflow`) published before."""
        workflow_id = str(body.get("workflow_id") or "kvflow")
        ste: dict[str, float] = {}
        try:
            for agent, value in (body.get("agent_data") or {}).items():
                ste[str(agent)] = _ste_value(value)
            now = int(body.get("timestep_cnt") or 0)
            for step, agents in (body.get("timestep_data") or {}).items():
                ahead = int(step) - now
                if ahead < 0:
                    continue
                for agent in agents:
                    ste[str(agent)] = min(ste.get(str(agent), math.inf), float(ahead))
        except (AttributeError, TypeError, ValueError) as exc:
            raise WorkflowError(f"not a KVFlow update body: {exc}") from None
        self.board.publish(f"kvflow:{workflow_id}", ste)
        self.publish(self.board.agent_ste())
        return ste

    # -- upkeep ---------------------------------------------------------------------------

    def expire(self) -> list[str]:
        """Drop workflows idle longer than `idle_ttl_s`; returns their ids."""
        cutoff = self.clock() - self.idle_ttl_s
        idle = [w for w, wf in self.declared.items() if wf.touched < cutoff]
        for workflow_id in idle:
            del self.declared[workflow_id]
            self.board.end(workflow_id)
        if idle:
            self.publish(self.board.agent_ste())
        return idle

    def _changed(self, workflow: DeclaredWorkflow) -> None:
        workflow.touched = self.clock()
        if workflow.state.finished:
            workflow.ste = {}
            self.board.end(workflow.workflow_id)
        else:
            workflow.ste = steps_to_execution(workflow.graph, workflow.state)
            self.board.publish(workflow.workflow_id, workflow.ste)
        self.publish(self.board.agent_ste())


def _ste_value(value: Any) -> float:
    if value is None:
        return math.inf
    number = float(value)
    if number != number or number < 0:
        raise ValueError(f"steps-to-execution must be >= 0, got {value!r}")
    return number
