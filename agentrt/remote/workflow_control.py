"""The runtime's workflows declared on an agentrt server, in order per workflow.

A workflow's step graph is posted (`POST /v1/workflows`, `progress="reports"`) when it
starts and deleted when it ends (or when the backend closes with it still running); each
agent run's start and finish (with where control went) are reported (`PATCH
/v1/workflows/{id}`), so the declared graph stands where the runtime's does, and so is an
agent's tool pause (`tool_pauses`), so the server pins the agent's KV for it. Messages go
out in the background, in order per workflow; `settled(workflow_id)` is what a call of
that workflow waits for (the server sees the graph and the agent's start before its first
call, the pause before its next). They are soft: one that fails only costs the server
that hint.
"""

from __future__ import annotations

import contextlib
from urllib.parse import quote

import anyio
import httpx
import orjson
from anyio.abc import TaskGroup

from agentrt.graph.step_graph import StepGraph
from agentrt.remote.graph_body import graph_body

CLOSE_TIMEOUT_S = 5.0  # for the last control messages as the backend closes


class WorkflowControl:
    def __init__(self, http: httpx.AsyncClient, tasks: TaskGroup) -> None:
        self._http = http
        self._tasks = tasks
        self._declared: set[str] = set()  # workflows declared on the server
        self._settled: dict[str, anyio.Event] = {}  # per workflow: its last control message
        self._graph_bodies: dict[StepGraph, dict] = {}

    def settled(self, workflow_id: str) -> anyio.Event | None:
        """Set once the workflow's control messages sent so far were answered."""
        return self._settled.get(workflow_id)

    def workflow_started(self, workflow_id: str, graph: StepGraph) -> None:
        if graph not in self._graph_bodies:
            self._graph_bodies[graph] = graph_body(graph)
        self._declared.add(workflow_id)
        body = {
            "workflow_id": workflow_id,
            "graph": self._graph_bodies[graph],
            "progress": "reports",  # agent_started / agent_finished move it
        }
        self._send(workflow_id, "POST", "/v1/workflows", body)

    def workflow_finished(self, workflow_id: str) -> None:
        if workflow_id in self._declared:
            self._declared.discard(workflow_id)
            self._send(workflow_id, "DELETE", _workflow_path(workflow_id), None)

    def agent_started(self, workflow_id: str, agent_id: str) -> None:
        if workflow_id in self._declared:
            body = {"started": [agent_id]}
            self._send(workflow_id, "PATCH", _workflow_path(workflow_id), body)

    def agent_finished(self, workflow_id: str, agent_id: str, take: list[str] | None) -> None:
        if workflow_id in self._declared:
            done = agent_id if take is None else {"agent": agent_id, "take": take}
            self._send(workflow_id, "PATCH", _workflow_path(workflow_id), {"finished": [done]})

    def tool_paused(self, workflow_id: str, agent_id: str, tool: str) -> None:
        if workflow_id in self._declared:
            body = {"tool_pauses": [{"agent": agent_id, "tools": [tool]}]}
            self._send(workflow_id, "PATCH", _workflow_path(workflow_id), body)

    async def close(self) -> None:
        """Let the control messages on their way arrive, then delete the workflows still
        declared (the runtime stopped with them running)."""
        if not self._settled:
            return
        with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            for done in list(self._settled.values()):
                await done.wait()
            for workflow_id in sorted(self._declared):
                with contextlib.suppress(httpx.HTTPError):
                    await self._http.delete(_workflow_path(workflow_id))
        self._declared.clear()

    def _send(self, workflow_id: str, method: str, path: str, body: dict | None) -> None:
        """Send a workflow's control message after its earlier ones (in the background)."""
        before = self._settled.get(workflow_id)
        done = self._settled[workflow_id] = anyio.Event()
        self._tasks.start_soon(self._request, workflow_id, method, path, body, before, done)

    async def _request(
        self,
        workflow_id: str,
        method: str,
        path: str,
        body: dict | None,
        before: anyio.Event | None,
        done: anyio.Event,
    ) -> None:
        try:
            if before is not None:
                await before.wait()
            content = orjson.dumps(body) if body is not None else None
            headers = {"Content-Type": "application/json"} if body is not None else None
            with contextlib.suppress(httpx.HTTPError):  # a hint lost, never a call
                await self._http.request(method, path, content=content, headers=headers)
        finally:
            done.set()
            if method == "DELETE" and self._settled.get(workflow_id) is done:
                del self._settled[workflow_id]


def _workflow_path(workflow_id: str) -> str:
    return f"/v1/workflows/{quote(workflow_id, safe='')}"
