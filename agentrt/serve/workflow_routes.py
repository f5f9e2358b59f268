"""Routes of declared workflows and KVFlow's update (`serve.workflows` does the work).

POST   /v1/workflows          {"workflow_id"?, "graph": {edges|adjacency|agents}}
GET    /v1/workflows/{id}     the workflow's state and steps-to-execution
PATCH  /v1/workflows/{id}     {"started": [agent], "finished": [agent | {"agent", "take"}]}
DELETE /v1/workflows/{id}     forget it (its agents' hints and pins go)
POST   /v1/update             KVFlow's {agent_data | timestep_data, timestep_cnt}
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentrt.serve.bodies import read_json
from agentrt.serve.errors import APIError
from agentrt.serve.service import Service
from agentrt.serve.workflows import DeclaredWorkflow, WorkflowError, graph_from_body


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
        try:
            graph = graph_from_body(graph_body)
            workflow = service.workflows.declare(graph, workflow_id)
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
        try:
            service.workflows.report(workflow, _names(body, "started"), _names(body, "finished"))
        except WorkflowError as exc:
            raise APIError(409, str(exc), code="workflow_conflict") from None
        return JSONResponse(workflow.describe())

    async def delete(request: Request) -> Response:
        service: Service = request.app.state.service
        workflow_id = request.path_params["workflow_id"]
        deleted = service.workflows.delete(workflow_id)
        service.agents.release_pins([workflow_id])  # a paused conversation of it, if any
        return JSONResponse({"workflow_id": workflow_id, "object": "workflow", "deleted": deleted})

    async def kvflow_update(request: Request) -> Response:
        service: Service = request.app.state.service
        body = await read_json(request, max_body_bytes)
        try:
            ste = service.workflows.kvflow_update(body)
        except WorkflowError as exc:
            raise APIError(400, str(exc)) from None
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
