"""`AgentContext`: what an agent function gets to talk to the model, tools and the graph."""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from agentrt.scheduler.errors import unwrap

if TYPE_CHECKING:
    from agentrt.scheduler.runtime import Runtime
    from agentrt.scheduler.workflow_run import AgentRun


class AgentContext:
    """One run of one agent inside one workflow instance.

    - `input`: the instance's input; `results`: the latest output of each finished agent.
    - `await ctx.gen(text, **sampling)`: one model call on the agent's prefix + `text`;
      returns the text. `await ctx.gen_many(texts, **sampling)`: several at once.
    - `await ctx.tool(fn, *args)`: an `async def` tool runs on the event loop, a plain
      function in a worker thread of the runtime's own pool, so a blocking tool pauses this
      agent only. A timeout or cancellation stops waiting for the thread at once (the thread
      runs on to its end). After a model call of this run it is a tool pause, which the
      model client hears of (`CompletionClient.tool_paused`: a server keeps the agent's
      KV for its next call).
    - `ctx.goto(*agents)`: hand control to these successors (default: all forward
      successors); naming the target of a bounded back edge takes the loop.
    """

    def __init__(self, runtime: Runtime, agent_run: AgentRun) -> None:
        run = agent_run.run
        self._runtime = runtime
        self._run = run
        self.agent = agent_run.agent
        self.call_id = agent_run.id
        self.step = agent_run.step
        self.agent_id = run.workflow.agent_id(self.agent)
        self.visit = run.state.visits(self.agent) + 1
        self.started_at = time.perf_counter()
        self.take: list[str] | None = None
        # Model calls this agent's next call depends on (initially its predecessors' last).
        self.frontier: set[str] = agent_run.frontier
        self.last_call_id: str | None = None  # this run's latest model call

    @property
    def workflow_id(self) -> str:
        return self._run.workflow_id

    @property
    def input(self) -> Any:
        return self._run.input

    @property
    def results(self) -> dict[str, Any]:
        return self._run.results

    async def gen(self, text: str, **sampling: Any) -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"agent {self.agent!r}: ctx.gen takes the prompt text as a str, "
                f"got {type(text).__name__}"
            )
        return (await self._runtime.model.call(self._run, self, text, sampling)).text

    async def gen_many(self, texts: Iterable[str], **sampling: Any) -> list[str]:
        if isinstance(texts, str):
            raise TypeError(
                f"agent {self.agent!r}: ctx.gen_many takes a list of prompt texts, got one str"
            )
        texts = list(texts)
        answers: list[str] = [""] * len(texts)

        async def one(i: int) -> None:
            answers[i] = await self.gen(texts[i], **sampling)

        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(texts)):
                    tg.start_soon(one, i)
        except BaseException as exc:
            inner = unwrap(exc)
            if inner is exc:
                raise
            raise inner from None  # the failing call's own error, not a group of one
        return answers

    async def tool(self, fn: Callable[..., Any | Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.last_call_id is not None:
            self._runtime.llm.tool_paused(self.workflow_id, self.agent_id, tool_name(fn))
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        result = await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs),
            abandon_on_cancel=True,
            limiter=self._runtime.tool_threads,
        )
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            result = await result
        return result

    def goto(self, *agents: str) -> None:
        self.take = list(agents)


_NAMED = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    type,
)


def tool_name(fn: Callable[..., Any]) -> str:
    """A tool's name: its function's (through `functools.partial`), else its type's."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, _NAMED):
        return fn.__name__
    return type(fn).__name__  # a callable object
