"""The outputs of one HTTP request's choices, merged into one stream.

    async with ChoiceStream(service, jobs) as outs:
        async for index, out in outs: ...

One choice is read straight from its `AsyncLLM.generate`. Several run as tasks in the
service's task group (not in a task group of their own: a generator that yields inside
a task group cannot be closed early cleanly), each under its own cancel scope. Leaving
the block, however it is left, closes or cancels every choice, which aborts the engine
requests still running and frees their KV.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams


@dataclass(frozen=True)
class Job:
    """One choice to generate: its prompt, sampling, the agent it runs for (`agent_id`,
    whose fixed prefix is the first `prefix_len` tokens) and its place in the waiting
    queue (`LLMEngine.add_request`'s `priority` and `program_start`); `pin_key`: its
    conversation's tool-pause pin, which it takes over when the engine admits it;
    `follow_up`: whether its client may send the next request as soon as it ends
    (`AsyncLLM.generate`)."""

    prompt_ids: list[int]
    params: SamplingParams
    agent_id: str | None = None
    prefix_len: int | None = None
    priority: int = 0
    program_start: float | None = None
    pin_key: Hashable | None = None
    follow_up: bool = True


Generate = Callable[[Job], AsyncIterator[RequestOutput]]


class ChoiceStream:
    def __init__(self, jobs: list[Job], generate: Generate, tasks: TaskGroup) -> None:
        self.jobs = jobs
        self.generate = generate
        self.tasks = tasks
        self._single: AsyncIterator[RequestOutput] | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[int, RequestOutput | Exception]
        ](math.inf)

    async def __aenter__(self) -> ChoiceStream:
        if len(self.jobs) == 1:
            self._single = self.generate(self.jobs[0])
        else:
            for i, job in enumerate(self.jobs):
                scope = anyio.CancelScope()
                self._scopes.append(scope)
                self.tasks.start_soon(self._pump, i, job, scope, self._send.clone())
        self._send.close()
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._single is not None:
            await self._single.aclose()
        for scope in self._scopes:
            scope.cancel()
        self._receive.close()

    def __aiter__(self) -> ChoiceStream:
        return self

    async def __anext__(self) -> tuple[int, RequestOutput]:
        if self._single is not None:
            return 0, await self._single.__anext__()
        try:
            index, item = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        if isinstance(item, Exception):
            raise item
        return index, item

    async def _pump(self, index: int, job: Job, scope: anyio.CancelScope, send) -> None:
        with scope:
            async with send:
                outputs = self.generate(job)
                try:
                    async for out in outputs:
                        await send.send((index, out))
                except Exception as exc:  # handed to the reader, who raises it
                    await send.send((index, exc))
                finally:
                    await outputs.aclose()
