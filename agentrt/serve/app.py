"""The Starlette app: routes, error handlers and the engine's lifespan.

Routes are plain Starlette endpoints: each reads and validates its own body with the
pydantic models of `protocol.py`, so nothing per request goes through a dependency layer.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.loader import DEFAULT_MODEL
from agentrt.serve.bodies import parse
from agentrt.serve.chat import ChatHandler
from agentrt.serve.completions import CompletionHandler
from agentrt.serve.errors import APIError
from agentrt.serve.guards import Guards
from agentrt.serve.hints import read_hints
from agentrt.serve.protocol import ChatCompletionRequest, CompletionRequest
from agentrt.serve.service import Service
from agentrt.serve.settings import ServeSettings
from agentrt.serve.streaming import SSEResponse
from agentrt.serve.workflow_routes import workflow_routes


def model_name(engine: LLMEngine, settings: ServeSettings) -> str:
    return settings.served_model_name or engine.config.model or DEFAULT_MODEL


async def until_disconnect(request: Request, work):
    """Run `work()`; a client that disconnects first cancels it (aborting its requests).
    Its exceptions are raised here, outside the task group (which would wrap them)."""
    outcome: dict = {}

    async def run(scope: anyio.CancelScope) -> None:
        try:
            outcome["result"] = await work()
        except Exception as exc:
            outcome["error"] = exc
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, tg.cancel_scope)
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                tg.cancel_scope.cancel()
                break
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise APIError(499, "the client disconnected")
    return outcome["result"]


def abort_all(engine: LLMEngine) -> None:
    """Abort what the stopped engine loop left (requests cut off at shutdown queue their
    aborts for a step that never came), so the engine holds no request and no KV."""
    for request_id in list(engine.requests):
        engine.abort(request_id)
    if engine.requests:
        engine.step()


def build_app(engine: LLMEngine, settings: ServeSettings | None = None) -> Starlette:
    """The OpenAI-compatible app over `engine`; its lifespan runs the engine loop."""
    settings = settings or ServeSettings()
    name = model_name(engine, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        wait = settings.arrival_wait_ms / 1e3
        async with AsyncLLM(engine, wait) as llm, anyio.create_task_group() as tasks:
            service = Service(llm, settings, name)
            service.tasks = tasks
            app.state.service = service
            app.state.chat = ChatHandler(service) if service.renderer is not None else None
            app.state.completions = CompletionHandler(service)
            yield
            tasks.cancel_scope.cancel()  # choices of requests cut off by the shutdown
        abort_all(engine)

    async def api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    async def unexpected(request: Request, exc: Exception) -> Response:
        return APIError(500, f"internal error: {type(exc).__name__}: {exc}").response()

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return APIError(exc.status_code, str(exc.detail)).response()

    async def health(request: Request) -> Response:
        service: Service = request.app.state.service
        if service.draining or service.llm.failed:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    def card(service: Service) -> dict:
        return {
            "id": service.model_name,
            "object": "model",
            "created": service.created,
            "owned_by": "agentrt",
            "max_model_len": engine.max_model_len,
        }

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [card(request.app.state.service)]})

    async def model(request: Request) -> Response:
        service: Service = request.app.state.service
        service.check_model(request.path_params["model"])
        return JSONResponse(card(service))

    async def metrics(request: Request) -> Response:
        service: Service = request.app.state.service
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    async def chat(request: Request) -> Response:
        service: Service = request.app.state.service
        req = await parse(request, ChatCompletionRequest, settings.max_body_bytes)
        handler: ChatHandler | None = request.app.state.chat
        if handler is None:
            service.check_model(req.model)
            raise APIError(400, "this model has no chat template; use /v1/completions")
        plan = await handler.plan(req, read_hints(req.model_extra, request.headers))
        return await _answer(request, service, req.stream, handler, plan)

    async def completions(request: Request) -> Response:
        service: Service = request.app.state.service
        req = await parse(request, CompletionRequest, settings.max_body_bytes)
        handler: CompletionHandler = request.app.state.completions
        plan = await handler.plan(req, read_hints(req.model_extra, request.headers))
        return await _answer(request, service, req.stream, handler, plan)

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", model, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            *workflow_routes(settings.max_body_bytes),
        ],
        middleware=[
            Middleware(Guards, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes)
        ],
        exception_handlers={
            APIError: api_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.state.service = None  # set once the engine loop runs
    return app


async def _answer(request: Request, service: Service, stream: bool, handler, plan):
    release = service.admit(plan)
    if stream:
        return SSEResponse(handler.stream(plan), on_close=release)
    try:
        body = await until_disconnect(request, lambda: handler.complete(plan))
    finally:
        release()
    return Response(orjson.dumps(body), media_type="application/json")
