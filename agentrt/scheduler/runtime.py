"""The runtime: many workflow instances on one model client, released out of order.

Each instance's `WorkflowState` decides which of its agents are ready; a ready agent run
starts as soon as `ReadyRuns` releases it, never waiting for other workflows (or, with
`barrier=True`, step by step across all of them). After every state change the
workflows' steps-to-execution reach the client (`update_steps_to_execution`); each
instance's start (with its step graph), its agents' runs and its end reach it too
(`workflow_started`, `agent_started` / `agent_finished`, `workflow_finished`), so a
server can hold the graph, at the runtime's position, for as long as the instance runs.

Failures stay inside their workflow: an agent that raises (any `BaseException`), runs
past its `timeout=`, or whose workflow runs past the `timeout=` of `submit` fails that
workflow only; its other agents are cancelled and their model requests aborted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.agent_options import check_timeout
from agentrt.graph.decorators import Workflow
from agentrt.graph.ste import steps_to_execution
from agentrt.graph.step_graph import StepGraph
from agentrt.graph.workflow_state import WorkflowState
from agentrt.scheduler.context import AgentContext
from agentrt.scheduler.errors import (
    AgentExitError,
    AgentTimeoutError,
    WorkflowCancelledError,
    WorkflowTimeoutError,
    unwrap,
)
from agentrt.scheduler.hints import HintBoard
from agentrt.scheduler.id_graph import agent_id_graph
from agentrt.scheduler.model_calls import ModelCalls, TokenDelta
from agentrt.scheduler.ready_runs import ReadyRuns
from agentrt.scheduler.workflow_run import AgentRun, RuntimeStats, WorkflowResult, WorkflowRun
from agentrt.trace.recorder import TraceRecorder


class Runtime:
    def __init__(
        self,
        llm: CompletionClient,
        prompts: PromptBuilder,
        *,
        priority: str = "fifo",
        barrier: bool = False,
        max_running_agents: int | None = None,
        trace: str | Path | TraceRecorder | None = None,
        tool_threads: int = 64,
        on_tokens: Callable[[TokenDelta], None] | None = None,
    ) -> None:
        """`priority` orders ready agent runs (`agentrt.scheduler.priority`);
        `tool_threads` caps the worker threads that plain-function tools run in (a pool
        of their own, so blocked tools never hold up the engine's steps); `on_tokens`,
        when given, receives every model call's output as it is generated."""
        self.llm = llm
        self.hints = HintBoard()
        self.trace = TraceRecorder(trace) if isinstance(trace, (str, Path)) else trace
        self.stats = RuntimeStats()
        self.model = ModelCalls(llm, prompts, self.stats, self.trace, on_tokens)
        self.tool_threads = anyio.CapacityLimiter(tool_threads)
        self._ready = ReadyRuns(priority, barrier, max_running_agents)
        self._runs: dict[str, WorkflowRun] = {}
        self._active = 0
        self._wake = anyio.Event()
        self._tg: TaskGroup | None = None
        self._exit: AsyncExitStack | None = None
        self._remaining: dict[tuple[str, str], int] = {}
        self._id_graphs: dict[Workflow, StepGraph] = {}
        self._ids = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Dispatch workflows while the body runs. When the body ends normally, its
        submitted workflows run to their end first; when it raises, they are cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._dispatch_loop)
            try:
                yield self
                for run in list(self._runs.values()):
                    await run.ended.wait()
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    async def __aenter__(self) -> Runtime:
        """`async with runtime:` is `async with runtime.running():`."""
        self._exit = AsyncExitStack()
        return await self._exit.enter_async_context(self.running())

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._exit is not None
        return await self._exit.__aexit__(*exc_info)

    async def run(
        self, workflow: Workflow, inputs: Iterable[Any], *, timeout: float | None = None
    ) -> list[WorkflowResult]:
        """Run one instance of `workflow` per input, all at once; results keep input order.
        `timeout`: seconds each instance may take (see `submit`)."""
        _ = workflow.graph  # a badly declared workflow fails here, before anything runs
        check_timeout("workflow", timeout)
        async with self.running():
            handles = [self.submit(workflow, x, timeout=timeout) for x in inputs]
            return [await h.wait() for h in handles]

    def submit(
        self,
        workflow: Workflow,
        input: Any,
        workflow_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> WorkflowRun:
        """Start a workflow instance now (inside `async with runtime:`). With `timeout`,
        an instance still running after that many seconds fails with
        `WorkflowTimeoutError`; its agents are cancelled and their model calls aborted."""
        if self._tg is None:
            raise RuntimeError("use `async with runtime:` (or runtime.run) before submitting")
        check_timeout("workflow", timeout)
        graph = workflow.graph  # validates
        if workflow_id is None:
            self._ids += 1
            workflow_id = f"{workflow.name}-{self._ids}"
        if workflow_id in self._runs:
            raise ValueError(f"duplicate workflow id {workflow_id!r}")
        run = WorkflowRun(workflow, workflow_id, input, WorkflowState(graph), time.perf_counter())
        self._runs[workflow_id] = run
        if workflow not in self._id_graphs:
            self._id_graphs[workflow] = agent_id_graph(workflow)
        self.llm.workflow_started(workflow_id, self._id_graphs[workflow])
        self._queue(run, run.state.ready)
        self._publish(run)
        self._wake.set()
        if timeout is not None:
            self._tg.start_soon(self._watchdog, run, timeout)
        return run

    async def _watchdog(self, run: WorkflowRun, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await run.ended.wait()
            return
        if run.result is None:
            self._abort(run, WorkflowTimeoutError(run.workflow_id, seconds))
            self._wake.set()

    def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow: pending agents never start, running ones are cancelled (their
        engine requests are aborted, releasing their KV locks)."""
        run = self._runs.get(workflow_id)
        if run is not None and run.result is None:
            self._abort(run, WorkflowCancelledError(f"workflow {workflow_id} was cancelled"))

    async def _dispatch_loop(self) -> None:
        while True:
            for agent_run in self._ready.release(self._active):
                self._start(agent_run)
            await self._wake.wait()
            self._wake = anyio.Event()

    def _queue(self, run: WorkflowRun, agents: Iterable[str]) -> None:
        for agent in sorted(agents):
            run.runs += 1
            self._ready.queue.push(
                AgentRun(
                    run,
                    agent,
                    f"{run.workflow_id}#{run.runs}",
                    run.pending_step.pop(agent, 0),
                    self._steps_left(run.workflow, agent),
                    run.pending_frontier.pop(agent, set()),
                )
            )

    def _start(self, agent_run: AgentRun) -> None:
        run = agent_run.run
        if run.error is not None:  # failed or cancelled while held for the barrier
            return
        run.state.start(agent_run.agent)
        self.llm.agent_started(run.workflow_id, run.workflow.agent_id(agent_run.agent))
        self._active += 1
        run.active += 1
        assert self._tg is not None
        self._tg.start_soon(self._agent_task, agent_run, AgentContext(self, agent_run))

    async def _agent_task(self, agent_run: AgentRun, ctx: AgentContext) -> None:
        run, agent = agent_run.run, agent_run.agent
        error: BaseException | None = None
        value = None
        limit = run.workflow.timeouts.get(agent)
        group = self._tg
        assert group is not None
        with anyio.CancelScope() as scope:
            run.scopes[agent_run.id] = scope
            deadline = anyio.move_on_after(limit)
            try:
                with deadline:
                    value = await run.workflow.functions[agent](ctx)
                if deadline.cancelled_caught:
                    error = AgentTimeoutError(run.workflow_id, agent, limit or 0.0)
            except anyio.get_cancelled_exc_class() as exc:
                if scope.cancel_called or deadline.cancel_called:
                    raise
                if group.cancel_scope.cancel_called:
                    raise
                error = AgentExitError(agent, exc)  # raised by the agent, not a cancel
                error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - even sys.exit() fails only its workflow
                error = unwrap(exc)
                if not isinstance(error, Exception):
                    error = AgentExitError(agent, error)
                    error.__cause__ = exc
        del run.scopes[agent_run.id]
        self._active -= 1
        run.active -= 1
        if scope.cancelled_caught or run.result is not None or run.error is not None:
            pass  # its workflow was cancelled or failed meanwhile: the result is dropped
        elif error is not None:
            self._abort(run, error)
        else:
            try:
                self._agent_done(agent_run, ctx, value)
            except Exception as exc:  # e.g. goto() to an agent it cannot hand control to
                self._abort(run, exc)
        self._maybe_end(run)
        self._wake.set()

    def _agent_done(self, agent_run: AgentRun, ctx: AgentContext, value: Any) -> None:
        run, agent = agent_run.run, agent_run.agent
        targets = ctx.take if ctx.take is not None else run.workflow.graph.successors(agent)
        activated = run.state.finish(agent, take=ctx.take)
        ids = run.workflow.agent_id
        take = [ids(a) for a in ctx.take] if ctx.take is not None else None
        self.llm.agent_finished(run.workflow_id, ids(agent), take)
        run.results[agent] = value
        for v in targets:
            run.pending_frontier[v] |= ctx.frontier
            run.pending_step[v] = max(run.pending_step.get(v, 0), agent_run.step + 1)
        self._queue(run, activated)
        self._publish(run)

    def _abort(self, run: WorkflowRun, error: BaseException) -> None:
        if run.error is None:
            run.error = error
        for scope in run.scopes.values():
            scope.cancel()
        self._maybe_end(run)

    def _maybe_end(self, run: WorkflowRun) -> None:
        if run.result is not None or run.active:
            return
        if run.error is None and not run.state.finished:
            return
        self.stats.workflows_done += 1
        run.result = run.make_result()
        self.hints.end(run.workflow_id)
        self.llm.update_steps_to_execution(self.hints.agent_ste())
        self.llm.workflow_finished(run.workflow_id)
        self._ready.drop(run)
        del self._runs[run.workflow_id]
        run.ended.set()

    def _publish(self, run: WorkflowRun) -> None:
        workflow = run.workflow
        ste = steps_to_execution(workflow.graph, run.state)
        self.hints.publish(run.workflow_id, {workflow.agent_id(a): s for a, s in ste.items()})
        self.llm.update_steps_to_execution(self.hints.agent_ste())

    def _steps_left(self, workflow: Workflow, agent: str) -> int:
        key = (workflow.name, agent)
        if key not in self._remaining:
            succ = workflow.graph.successors(agent)
            self._remaining[key] = 1 + max((self._steps_left(workflow, s) for s in succ), default=0)
        return self._remaining[key]
