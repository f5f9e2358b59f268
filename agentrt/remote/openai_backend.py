"""`backend="openai"`: the runtime's model calls on any OpenAI-compatible server.

    async with OpenAIBackend(RemoteSettings(base_url="http://127.0.0.1:8000"), tokenizer) as llm:
        out = await llm.complete(prompt_ids, params, CallInfo("planner", prefix_len=128))

It is a `CompletionClient` (what `AsyncLLM` is in process): each call is one streamed
`POST /v1/completions` with the prompt as token ids (so prompts are the same tokens as in
process), greedy or sampled as `SamplingParams` say, with its `CallInfo` in the fields the
server's kind takes (`server_kind`). TTFT and inter-token times are measured here, on the
client's clock; the prefix-cache hit comes from `usage.prompt_tokens_details.cached_tokens`.

On an agentrt server the runtime's workflows are declared too (`WorkflowControl`), and a
call of a workflow waits until the server has heard that workflow's earlier messages.

One httpx client with pooled keep-alive connections; at most `max_in_flight` calls at
once. A call whose request cannot be sent (connection error, timeout before the answer)
or that is answered 429 or 503 is retried `retries` times with exponential backoff
(honouring `Retry-After`); any other failure, or a stream that breaks after it began,
fails that call only: its output has `finish_reason="error"` and the server's message.
Cancelling a call (Ctrl-C, a workflow timeout) closes its HTTP request."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from itertools import count
from typing import Any

import anyio
import httpx
import orjson

from agentrt.engine.call_info import CallInfo
from agentrt.engine.outputs import RequestOutput, final_output
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.ste import ste_json
from agentrt.graph.step_graph import StepGraph
from agentrt.remote.server_kind import (
    completion_body,
    detect,
    request_fields,
    takes_ste_updates,
    takes_workflows,
)
from agentrt.remote.settings import RemoteError, RemoteSettings
from agentrt.remote.workflow_control import WorkflowControl

RETRY_STATUS = (429, 503)
MAX_BACKOFF_S = 60.0
ANONYMOUS = CallInfo()


class OpenAIBackend:
    def __init__(self, settings: RemoteSettings, tokenizer: Any) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.kind = settings.server_kind
        self.model = settings.model
        self._ids = count()
        self._limit = anyio.Semaphore(settings.max_in_flight)
        self._http: httpx.AsyncClient | None = None
        self._exit: AsyncExitStack | None = None
        self._ste: dict[str, float] | None = None
        self._ste_changed = anyio.Event()
        self._control: WorkflowControl | None = None  # agentrt servers only

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> OpenAIBackend:
        s = self.settings
        key = s.api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Limits(
            max_connections=s.max_in_flight + 2, max_keepalive_connections=s.max_in_flight + 2
        )
        self._exit = AsyncExitStack()
        self._http = await self._exit.enter_async_context(
            httpx.AsyncClient(
                base_url=s.base_url.rstrip("/"),
                headers=headers,
                limits=limits,
                timeout=httpx.Timeout(s.timeout_s, connect=min(10.0, s.timeout_s)),
            )
        )
        try:
            await self._discover()
            if takes_ste_updates(self.kind) or takes_workflows(self.kind):
                tasks = await self._exit.enter_async_context(anyio.create_task_group())
                self._exit.callback(tasks.cancel_scope.cancel)
                if takes_workflows(self.kind):
                    self._control = WorkflowControl(self._http, tasks)
                if takes_ste_updates(self.kind):
                    tasks.start_soon(self._post_ste_updates)
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._exit is not None
        try:
            if self._control is not None:
                await self._control.close()
        finally:
            await self._exit.aclose()

    async def _discover(self) -> None:
        assert self._http is not None
        try:
            resp = await self._http.get("/v1/models")
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.settings.base_url}: {exc}") from None
        if resp.status_code != 200:
            raise RemoteError(
                f"{self.settings.base_url}/v1/models answered {resp.status_code}: {resp.text[:300]}"
            )
        body = resp.json()
        if self.kind == "auto":
            self.kind = detect(body, resp.headers)
        if self.model is None:
            models = [m.get("id") for m in body.get("data", [])]
            if not models:
                raise RemoteError(f"{self.settings.base_url} serves no model")
            self.model = models[0]

    # -- CompletionClient -----------------------------------------------------------------

    async def complete(
        self, prompt: list[int], params: SamplingParams, call: CallInfo = ANONYMOUS
    ) -> RequestOutput:
        return await final_output(self.generate(prompt, params, call))

    async def generate(
        self, prompt: list[int], params: SamplingParams, call: CallInfo = ANONYMOUS
    ) -> AsyncIterator[RequestOutput]:
        """The call's output after every streamed chunk; the last one is finished
        (`finish_reason="error"` with the reason when the call failed)."""
        rid = f"agentrt-{os.getpid()}-{next(self._ids)}"
        text = self.tokenizer.decode(prompt) if self.kind == "generic" else None
        body = {
            **completion_body(self.kind, self.model, prompt, text, params),
            **request_fields(self.kind, rid, call),
        }
        out = RequestOutput(rid, list(prompt), [], [], "", False)
        out.arrival_time = time.perf_counter()
        settled = None
        if self._control is not None and call.workflow_id:
            settled = self._control.settled(call.workflow_id)
        if settled is not None:  # the server hears of the workflow's changes first
            await settled.wait()
        async with self._limit:
            try:
                async for piece in self._stream(body, out):
                    yield piece
            except _CallFailed as exc:
                yield self._failed(out, str(exc))

    def update_steps_to_execution(self, agent_ste: Mapping[str, float]) -> None:
        """Kept and posted by a background task (the latest map wins) where the server
        takes KVFlow's `/v1/update`; ignored by other servers."""
        if not takes_ste_updates(self.kind):
            return
        self._ste = dict(agent_ste)
        self._ste_changed.set()

    def workflow_started(self, workflow_id: str, graph: StepGraph) -> None:
        """Declares the workflow's graph on an agentrt server; ignored by others."""
        if self._control is not None:
            self._control.workflow_started(workflow_id, graph)

    def workflow_finished(self, workflow_id: str) -> None:
        """Deletes the workflow's declaration (where there is one)."""
        if self._control is not None:
            self._control.workflow_finished(workflow_id)

    def agent_started(self, workflow_id: str, agent_id: str) -> None:
        """Reports the start to an agentrt server holding the workflow."""
        if self._control is not None:
            self._control.agent_started(workflow_id, agent_id)

    def agent_finished(self, workflow_id: str, agent_id: str, take: list[str] | None) -> None:
        """Reports the finish (and where control went) to an agentrt server."""
        if self._control is not None:
            self._control.agent_finished(workflow_id, agent_id, take)

    def tool_paused(self, workflow_id: str, agent_id: str, tool: str) -> None:
        """Reports the pause to an agentrt server holding the workflow; ignored by others."""
        if self._control is not None:
            self._control.tool_paused(workflow_id, agent_id, tool)

    # -- the HTTP side ----------------------------------------------------------------------

    async def _stream(self, body: dict, out: RequestOutput) -> AsyncIterator[RequestOutput]:
        assert self._http is not None
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json"}
        for attempt in range(self.settings.retries + 1):
            last_try = attempt == self.settings.retries
            try:
                async with self._http.stream(
                    "POST", "/v1/completions", content=data, headers=headers
                ) as resp:
                    if resp.status_code in RETRY_STATUS and not last_try:
                        await resp.aread()
                        await anyio.sleep(self._backoff(attempt, resp.headers))
                        continue
                    if resp.status_code != 200:
                        raise _CallFailed(_error_message(resp.status_code, await resp.aread()))
                    async for piece in self._read(resp, out):
                        yield piece
                    return
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if last_try or out.text:
                    raise _CallFailed(f"cannot reach the server: {exc!r}") from None
                await anyio.sleep(self._backoff(attempt, {}))
            except httpx.HTTPError as exc:  # the stream broke after it began
                raise _CallFailed(f"the server's answer broke off: {exc!r}") from None

    async def _read(self, resp: httpx.Response, out: RequestOutput) -> AsyncIterator[RequestOutput]:
        finish: str | None = None
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if "error" in chunk:
                raise _CallFailed(str(chunk["error"].get("message", chunk["error"])))
            usage = chunk.get("usage")
            if usage:
                details = usage.get("prompt_tokens_details") or {}
                out.num_cached_tokens = int(details.get("cached_tokens") or 0)
            for choice in chunk.get("choices") or ():
                text = choice.get("text") or ""
                if text:
                    if out.first_token_time is None:
                        out.first_token_time = time.perf_counter()
                    out.text += text
                    yield _snapshot(out)
                finish = choice.get("finish_reason") or finish
        out.finished = True
        out.finish_reason = finish or "stop"
        out.finish_time = time.perf_counter()
        out.token_ids = self._token_ids(out.text)
        yield _snapshot(out)

    def _token_ids(self, text: str) -> list[int]:
        """The output as token ids: the server sends text; re-encoded here."""
        if not text:
            return []
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _backoff(self, attempt: int, headers: Mapping[str, str]) -> float:
        """Exponential backoff, at least what `Retry-After` asks, at most a minute."""
        wait = self.settings.backoff_s * 2**attempt
        with contextlib.suppress(ValueError):
            wait = max(wait, float(headers.get("retry-after", "0")))
        return min(MAX_BACKOFF_S, wait)

    def _failed(self, out: RequestOutput, why: str) -> RequestOutput:
        out.finished = True
        out.finish_reason = "error"
        out.error = why
        out.finish_time = time.perf_counter()
        return _snapshot(out)

    async def _post_ste_updates(self) -> None:
        assert self._http is not None
        while True:
            await self._ste_changed.wait()
            self._ste_changed = anyio.Event()
            ste = self._ste or {}
            body = {
                "workflow_id": "agentrt-runtime",
                "agent_data": {a: ste_json(v) for a, v in ste.items()},
            }
            with contextlib.suppress(httpx.HTTPError):  # the next update has the whole map
                await self._http.post("/v1/update", content=orjson.dumps(body))


class _CallFailed(Exception):
    pass


def _snapshot(out: RequestOutput) -> RequestOutput:
    return RequestOutput(**{**out.__dict__, "token_ids": list(out.token_ids)})


def _error_message(status: int, body: bytes) -> str:
    try:
        message = orjson.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:300].decode(errors="replace")
    return f"the server answered {status}: {message}"
