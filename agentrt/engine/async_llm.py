"""The async API the runtime uses: many coroutines share one continuously batched engine.

    async with AsyncLLM(engine) as llm:
        async for out in llm.generate(prompt, params):   # streams token deltas
            ...
        out = await llm.complete(prompt, params, CallInfo(agent_id="planner", prefix_len=64))

It is the runtime's in-process `CompletionClient`: a call's `CallInfo` gives the engine
its agent id, fixed-prefix length and priority. The workflow lifecycle and tool-pause
hooks are no-ops here (`CompletionClient`'s): the runtime hands the KV manager its
steps-to-execution itself (`update_steps_to_execution`), which is all a declared graph or
a tool pause would tell it.

Engine steps run on the compute thread (`compute_thread`), so the event loop stays free
while a batch executes. Leaving `generate` early aborts the request, releasing its KV.
A request that fails inside a step raises `RequestFailedError` in its own caller only;
a failure of the engine loop itself ends every request with `EngineDeadError`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Hashable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from agentrt.engine.call_info import CallInfo
from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.compute_thread import submit_to_compute_thread
from agentrt.engine.errors import RequestFailedError
from agentrt.engine.llm_engine import LLMEngine, Prompt
from agentrt.engine.outputs import RequestOutput, final_output
from agentrt.engine.sampling_params import SamplingParams

ANONYMOUS = CallInfo()


class EngineDeadError(RuntimeError):
    """The engine loop failed; requests in flight cannot complete."""


class AsyncLLM(CompletionClient):
    """`arrival_wait` (seconds): after a step that finished requests while others still
    run, the next step waits until as many requests have arrived since that step began,
    at most this long. A client that answers a finished request with its next one
    (a closed loop, an agent's next call) then joins the next step instead of waiting
    out a whole step; the running requests pay at most `arrival_wait` per such step.
    Requests generated with `follow_up=False` do not count as finished for it. Callers
    in this process add their next request before the next step anyway (0)."""

    def __init__(self, engine: LLMEngine, arrival_wait: float = 0.0) -> None:
        self.engine = engine
        self.arrival_wait = arrival_wait
        self._arrivals = 0
        self._no_follow_up: set[str] = set()
        self._streams: dict[str, MemoryObjectSendStream[RequestOutput]] = {}
        self._wakeup = anyio.Event()
        self._serving = False
        self._exit: AsyncExitStack | None = None
        self._error: BaseException | None = None
        self._hints_pending = False

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[AsyncLLM]:
        """Step the engine while the body runs (`async with AsyncLLM(engine)` does this).
        Requests abandoned as the body ends are aborted before it returns."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._run)
                self._serving = True
                try:
                    yield self
                finally:
                    self._serving = False
                    tg.cancel_scope.cancel()
        finally:  # the loop has stopped (a step once begun has ended): no step races this
            if self._error is None:  # (a broken engine's bookkeeping is not to be trusted)
                self.engine.release_aborted()

    async def __aenter__(self) -> AsyncLLM:
        self._exit = AsyncExitStack()
        return await self._exit.enter_async_context(self.serving())

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._exit is not None
        return await self._exit.__aexit__(*exc_info)

    @property
    def failed(self) -> bool:
        """True once the engine loop has failed (no request can complete)."""
        return self._error is not None

    def update_steps_to_execution(self, agent_ste: Mapping[str, float]) -> None:
        """Steps-to-execution per agent id (0: ready or running; agents left out need
        nothing) for the KV manager's eviction order and prefetch; an idle engine steps
        once so the prefetch plan runs before the next request."""
        self.engine.kv.update_hints(agent_ste)
        self._hints_pending = True
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            idle = not self.engine.has_unfinished_requests()
            if idle and not self._hints_pending:
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
                continue
            if idle:  # a step for the prefetch plan; a request added meanwhile may run in it
                self._hints_pending = False
            await anyio.lowlevel.checkpoint()  # tasks woken by the last step add requests
            arrivals = self._arrivals
            try:
                outputs = await self._step()
            except Exception as exc:  # the engine is broken: fail every waiter, loudly
                self._error = exc
                for stream in self._streams.values():
                    stream.close()
                self._streams.clear()
                raise
            finished = 0  # requests whose clients may send their next one at once
            for out in outputs:
                if out.finished:
                    finished += out.request_id not in self._no_follow_up
                    self._no_follow_up.discard(out.request_id)
                stream = self._streams.get(out.request_id)
                if stream is None:
                    continue
                stream.send_nowait(out)
                if out.finished:
                    stream.close()
                    del self._streams[out.request_id]
            if finished and self.arrival_wait > 0 and self.engine.has_unfinished_requests():
                await self._await_arrivals(arrivals + finished)

    async def _await_arrivals(self, count: int) -> None:
        with anyio.move_on_after(self.arrival_wait):
            while self._arrivals < count:
                await self._wakeup.wait()
                self._wakeup = anyio.Event()

    async def _step(self) -> list[RequestOutput]:
        """One engine step: on the compute thread (the only thread hop of a step) for a
        runner that does tensor work, inline for one that is bookkeeping only (a hop
        would only pass the GIL back and forth)."""
        if not self.engine.runner.uses_compute_thread:
            return self.engine.step()
        done = asyncio.wrap_future(submit_to_compute_thread(self.engine.step))
        with anyio.CancelScope(shield=True):  # a step once begun runs to its end
            return await done

    async def generate(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        call: CallInfo = ANONYMOUS,
        *,
        request_id: str | None = None,
        program_start: float | None = None,
        pin_key: Hashable | None = None,
        follow_up: bool = True,
    ) -> AsyncIterator[RequestOutput]:
        """Submit a request and yield its output after every step that extends it.
        `call`: its agent id, fixed-prefix length and priority (the rest of `CallInfo`
        is for remote servers); `program_start`: when its workflow began, on the
        engine's clock (the server's program-level order); `pin_key`: a pin the request takes
        over at its admission (`LLMEngine.add_request`); `follow_up`: False when its caller
        will not send a next request right after it ends (it ends in a tool call the client
        runs first, or its workflow's last step), so the arrival wait does not wait for one.
        Bad arguments raise here
        (`LLMEngine.add_request`); a failure of this request inside a step raises
        `RequestFailedError`."""
        if self._error is not None:  # (the loop's failure also ended `serving`)
            raise EngineDeadError("the engine loop failed earlier") from self._error
        if not self._serving:
            raise RuntimeError("use `async with AsyncLLM(engine) as llm:` before generating")
        send, receive = anyio.create_memory_object_stream[RequestOutput](math.inf)
        rid = self.engine.add_request(
            prompt,
            params,
            request_id=request_id,
            agent_id=call.agent_id,
            prefix_len=call.prefix_len,
            priority=call.priority,
            program_start=program_start,
            pin_key=pin_key,
        )
        self._streams[rid] = send
        self._arrivals += 1
        if not follow_up:
            self._no_follow_up.add(rid)
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
                self._no_follow_up.discard(rid)
                self._streams.pop(rid, None)
                self.engine.abort(rid)
                self._wakeup.set()
        if not finished and self._error is not None:
            raise EngineDeadError("the engine loop failed") from self._error

    async def complete(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        call: CallInfo = ANONYMOUS,
    ) -> RequestOutput:
        """Submit a request and return its final output (errors as in `generate`)."""
        return await final_output(self.generate(prompt, params, call))
