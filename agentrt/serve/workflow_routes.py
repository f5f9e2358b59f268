"""Routes of declared workflows and KVFlow's update (`serve.workflows` does the work).

POST   /v1/workflows          {"workflow_id"?, "graph": {edges|adjacency|agents},
                               "progress"?: "requests" | "reports"}
GET    /v1/workflows/{id}     the workflow's state and steps-to-execution
PATCH  /v1/workflows/{id}     {"started": [agent], "finished": [agent | {"agent", "take"}],
                               "tool_pauses": [{"agent", "tools": [name]}]}
DELETE /v1/workflows/{id}     forget it (its agents' hints and pins go)

A tool pause reported by PATCH pins the agent's latest answer in this workflow for the
tools' expected pause (soft: the answer's `tool_pauses` says, per agent, until when it
is pinned or why not); the agent's next request releases it.
POST   /v1/update             KVFlow's {agent_data | timestep_data, timestep_cnt}
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentrt.serve.agents import pause_key
from agentrt.serve.bodies import read_json
from agentrt.serve.errors import APIError
from agentrt.serve.service import Service
from agentrt.serve.workflows import PROGRESS, DeclaredWorkflow, WorkflowError, graph_from_body


def _workflow(service: Service, request: Request) -> DeclaredWorkflow:
    workflow_id = request.path_params["workflow_id"]
    workflow = service.workflows.get(workflow_id)
    if workflow is None:
        raise APIError(404, f"no workflow {workflow_id!r} is declared", code="workflow_not_found")
    return workflow


def _names(body: dict, key: str) -> list:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise APIError(400, f"`{key}` must be a list", param=key)
    return value


def _tool_pauses(body: dict) -> list[tuple[str, list[str]]]:
    pauses = []
    for item in _names(body, "tool_pauses"):
        agent = item.get("agent") if isinstance(item, dict) else None
        tools = item.get("tools") if isinstance(item, dict) else None
        if not isinstance(agent, str) or not isinstance(tools, list) or not tools:
            raise APIError(
                400, "each tool pause is {agent: str, tools: [str, ...]}", param="tool_pauses"
            )
        if not all(isinstance(t, str) and t for t in tools):
            raise APIError(400, "tool names must be non-empty strings", param="tool_pauses")
        pauses.append((agent, tools))
    return pauses


def workflow_routes(max_body_bytes: int) -> list[Route]:
    async def declare(request: Request) -> Response:
        service: Service = request.app.state.service
        body = await read_json(request, max_body_bytes)
        graph_body = body.get("graph")
        if not isinstance(graph_body, dict):
            raise APIError(400, "the body needs a `graph` object", param="graph")
        workflow_id = body.get("workflow_id")
        if workflow_id is not None and not isinstance(workflow_id, str):
            raise APIError(400, "`workflow_id` must be a string", param="workflow_id")
        progress = body.get("progress", "requests")
        if progress not in PROGRESS:
            raise APIError(400, f"`progress` must be one of {PROGRESS}", param="progress")
        try:
            graph = graph_from_body(graph_body)
            workflow = service.workflows.declare(graph, workflow_id, progress)
        except WorkflowError as exc:
            raise APIError(400, str(exc), param="graph") from None
        except OverflowError as exc:
            raise APIError(429, str(exc), code="too_many_workflows") from None
        return JSONResponse(workflow.describe())

    async def show(request: Request) -> Response:
        return JSONResponse(_workflow(request.app.state.service, request).describe())

    async def report(request: Request) -> Response:
        service: Service = request.app.state.service
        workflow = _workflow(service, request)
        body = await read_json(request, max_body_bytes)
        started, finished = _names(body, "started"), _names(body, "finished")
        pauses = _tool_pauses(body)
        if started or finished or not pauses:
            try:
                service.workflows.report(workflow, started, finished)
            except WorkflowError as exc:
                raise APIError(409, str(exc), code="workflow_conflict") from None
        paused = {}
        for agent, tools in pauses:
            until, outcome = service.agents.tool_paused(workflow, agent, tools)
            paused[agent] = {"pinned_until": until, "outcome": outcome}
        answer = workflow.describe()
        if pauses:
            answer["tool_pauses"] = paused
        return JSONResponse(answer)

    async def delete(request: Request) -> Response:
        service: Service = request.app.state.service
        workflow_id = request.path_params["workflow_id"]
        workflow = service.workflows.get(workflow_id)
        agents = workflow.graph.agents if workflow is not None else []
        deleted = service.workflows.delete(workflow_id)
        # a paused conversation of it, and its agents' tool pauses, if any
        service.agents.release_pins([workflow_id, *(pause_key(workflow_id, a) for a in agents)])
        return JSONResponse({"workflow_id": workflow_id, "object": "workflow", "deleted": deleted})

    async def kvflow_update(request: Request) -> Response:
        service: Service = request.app.state.service
        body = await read_json(request, max_body_bytes)
        try:
            ste = service.workflows.kvflow_update(body)
        except WorkflowError as exc:
            raise APIError(400, str(exc)) from None
        service.metrics.ste_updates.labels(service.model_name).inc()
        return JSONResponse({"status": "ok", "agents": len(ste)})

    async def learned(request: Request) -> Response:
        service: Service = request.app.state.service
        return JSONResponse(service.agents.export())

    return [
        Route("/v1/workflows", declare, methods=["POST"]),
        Route("/v1/workflows/learned", learned, methods=["GET"]),
        Route("/v1/workflows/{workflow_id}", show, methods=["GET"]),
        Route("/v1/workflows/{workflow_id}", report, methods=["PATCH"]),
        Route("/v1/workflows/{workflow_id}", delete, methods=["DELETE"]),
        Route("/v1/update", kvflow_update, methods=["POST"]),
    ]
