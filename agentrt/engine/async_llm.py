"""The async API the runtime uses: many coroutines share one continuously batched engine.

    async with AsyncLLM(engine) as llm:
        async for out in llm.generate(prompt, params):   # streams token deltas
            ...
        out = await llm.complete(prompt, params)          # just the final output

Engine steps run in a worker thread, so the event loop stays free to run agent code,
tools and new requests while a batch executes. Leaving `generate` early (cancellation,
`break`, an exception) aborts the request, which releases its KV locks.

A request that fails inside a step raises `RequestFailedError` in its own caller only;
the other requests and the engine loop go on. Only a failure of the engine loop itself
(outside any request) ends every request, with `EngineDeadError`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from agentrt.engine.errors import RequestFailedError
from agentrt.engine.llm_engine import LLMEngine, Prompt
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams

if TYPE_CHECKING:
    from agentrt.scheduler.hints import HintBoard


class EngineDeadError(RuntimeError):
    """The engine loop failed; requests in flight cannot complete."""


class AsyncLLM:
    def __init__(self, engine: LLMEngine) -> None:
        self.engine = engine
        self._streams: dict[str, MemoryObjectSendStream[RequestOutput]] = {}
        self._wakeup = anyio.Event()
        self._task_group: TaskGroup | None = None
        self._error: BaseException | None = None
        self._hints_pending = False

    async def __aenter__(self) -> AsyncLLM:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._run)
        return self

    async def __aexit__(self, *exc_info) -> bool | None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(*exc_info)

    @property
    def failed(self) -> bool:
        """True once the engine loop has failed (no request can complete)."""
        return self._error is not None

    def attach_hints(self, board: HintBoard) -> None:
        """Feed the board's STE to the KV manager on every update (eviction + prefetch);
        an idle engine steps once so the prefetch plan runs before the next request."""

        def on_update(b: HintBoard) -> None:
            self.engine.kv.update_hints(b.agent_ste())
            self._hints_pending = True
            self._wakeup.set()

        board.subscribe(on_update)

    async def _run(self) -> None:
        while True:
            idle = not self.engine.has_unfinished_requests()
            if idle and not self._hints_pending:
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
                continue
            if idle:  # a step for the prefetch plan; a request added meanwhile may run in it
                self._hints_pending = False
            try:
                outputs = await anyio.to_thread.run_sync(self.engine.step)
            except Exception as exc:  # the engine is broken: fail every waiter, loudly
                self._error = exc
                for stream in self._streams.values():
                    stream.close()
                self._streams.clear()
                raise
            for out in outputs:
                stream = self._streams.get(out.request_id)
                if stream is None:
                    continue
                stream.send_nowait(out)
                if out.finished:
                    stream.close()
                    del self._streams[out.request_id]

    async def generate(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        agent_id: str | None = None,
        prefix_len: int | None = None,
    ) -> AsyncIterator[RequestOutput]:
        """Submit a request and yield its output after every step that extends it.
        Bad arguments raise here (`LLMEngine.add_request`); a failure of this request
        inside a step raises `RequestFailedError`."""
        if self._task_group is None:
            raise RuntimeError("use `async with AsyncLLM(engine) as llm:` before generating")
        if self._error is not None:
            raise EngineDeadError("the engine loop failed earlier") from self._error
        send, receive = anyio.create_memory_object_stream[RequestOutput](math.inf)
        rid = self.engine.add_request(
            prompt, params, request_id=request_id, agent_id=agent_id, prefix_len=prefix_len
        )
        self._streams[rid] = send
        self._wakeup.set()
        finished = False
        try:
            async with receive:
                async for out in receive:
                    finished = out.finished
                    if out.error is not None:
                        raise RequestFailedError(f"request {rid} failed: {out.error}")
                    yield out
        finally:
            if not finished:
                self._streams.pop(rid, None)
                self.engine.abort(rid)
                self._wakeup.set()
        if not finished and self._error is not None:
            raise EngineDeadError("the engine loop failed") from self._error

    async def complete(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        *,
        agent_id: str | None = None,
        prefix_len: int | None = None,
    ) -> RequestOutput:
        """Submit a request and return its final output (errors as in `generate`)."""
        last: RequestOutput | None = None
        async for out in self.generate(prompt, params, agent_id=agent_id, prefix_len=prefix_len):
            last = out
        assert last is not None and last.finished
        return last
