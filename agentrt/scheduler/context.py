"""`AgentContext`: what an agent function gets to talk to the model, tools and the graph."""

from __future__ import annotations

import functools
import inspect
import time
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

    - `input`: the workflow instance's input; `results`: latest output of every agent of
      this instance that has finished (by agent name).
    - `await ctx.gen(text, **sampling)`: one model call; the prompt is the agent's fixed
      prefix followed by `text`. Returns the generated text.
    - `await ctx.gen_many(texts, **sampling)`: fan out several calls at once.
    - `await ctx.tool(fn, *args)`: run a tool. An `async def` tool runs on the event
      loop; a plain function runs in a worker thread (its own pool, apart from the
      engine's), so a blocking tool (`time.sleep`, a synchronous HTTP call) pauses this
      agent only. A timeout or cancellation stops waiting for a thread at once; the
      thread itself runs on to its end (Python cannot stop it). Its time is a pause of
      this agent, not a model call; the trace records it as think time.
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
