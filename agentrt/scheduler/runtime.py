"""The runtime: many workflow instances on one engine, released out of order.

Every agent run is a call in the `DependencyTracker`; it is released the moment the
agent becomes ready in its own workflow (its own predecessors are done), never waiting
for other workflows. With `barrier=True` the runtime instead runs step by step across all
workflows (the global-sync baseline). After every state change of a workflow its
steps-to-execution map is published on the `HintBoard` for the KV manager.

Failures stay inside their workflow: an agent that raises (any `BaseException`, even
`sys.exit()`), runs past its own `timeout=` or whose workflow runs past the `timeout=` of
`submit` fails that workflow only; its other agents are cancelled and their in-flight
engine requests aborted, which releases their KV.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Hashable, Iterable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from agentrt.engine.outputs import RequestOutput
from agentrt.engine.prompt import PromptBuilder
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.agent_options import check_timeout, make_sampling
from agentrt.graph.decorators import Workflow
from agentrt.graph.ste import steps_to_execution
from agentrt.graph.workflow_state import WorkflowState
from agentrt.scheduler.call import Call
from agentrt.scheduler.context import AgentContext
from agentrt.scheduler.errors import (
    AgentExitError,
    AgentTimeoutError,
    ModelCallError,
    WorkflowCancelledError,
    WorkflowTimeoutError,
    unwrap,
)
from agentrt.scheduler.hints import HintBoard
from agentrt.scheduler.tracker import DependencyTracker
from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import CallRecord


class CompletionClient(Protocol):
    """What the runtime needs from a model backend (`AsyncLLM` fits); `generate` (the
    output after every step) is used only when the runtime streams tokens."""

    async def complete(
        self, prompt: list[int], params: SamplingParams, *, agent_id: str, prefix_len: int
    ) -> RequestOutput: ...

    def generate(
        self, prompt: list[int], params: SamplingParams, *, agent_id: str, prefix_len: int
    ) -> AsyncGenerator[RequestOutput, None]: ...


@dataclass(frozen=True)
class TokenDelta:
    """New output text of one model call (`Runtime(on_tokens=...)`); `finished` on its
    last, also when the call is cut short (cancelled, timed out, failed)."""

    workflow_id: str
    agent: str
    call_id: str
    text: str
    finished: bool


@dataclass
class RuntimeStats:
    """Running totals over every workflow of a runtime (for progress displays)."""

    workflows_done: int = 0
    workflows_failed: int = 0
    llm_calls: int = 0
    output_tokens: int = 0


@dataclass
class WorkflowResult:
    workflow_id: str
    ok: bool
    output: Any
    results: dict[str, Any]
    error: BaseException | None
    llm_calls: int
    seconds: float
    input: Any = None


@dataclass(eq=False)
class WorkflowRun:
    """One live workflow instance."""

    workflow: Workflow
    workflow_id: str
    input: Any
    state: WorkflowState
    started_at: float
    results: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    active: int = 0
    llm_calls: int = 0
    runs: int = 0
    finish_times: dict[str, float] = field(default_factory=dict)
    scopes: dict[Hashable, anyio.CancelScope] = field(default_factory=dict)
    pending_deps: defaultdict[str, set] = field(default_factory=lambda: defaultdict(set))
    pending_step: dict[str, int] = field(default_factory=dict)
    pending_frontier: defaultdict[str, set] = field(default_factory=lambda: defaultdict(set))
    activation_frontier: dict[str, set[str]] = field(default_factory=dict)
    ended: anyio.Event = field(default_factory=anyio.Event)
    result: WorkflowResult | None = None

    def inherited_frontier(self, agent: str) -> set[str]:
        return set(self.activation_frontier.get(agent, ()))

    async def wait(self) -> WorkflowResult:
        await self.ended.wait()
        assert self.result is not None
        return self.result


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
        hints: HintBoard | None = None,
        tool_threads: int = 64,
        on_tokens: Callable[[TokenDelta], None] | None = None,
    ) -> None:
        """`tool_threads` caps the worker threads that plain-function tools run in (a pool
        of their own, so blocked tools never hold up the engine's steps); `on_tokens`,
        when given, receives every model call's output as it is generated."""
        self.llm = llm
        self.prompts = prompts
        self.barrier = barrier
        self.max_running_agents = max_running_agents
        self.hints = hints or HintBoard()
        attach = getattr(llm, "attach_hints", None)
        if attach is not None:
            attach(self.hints)  # STE reaches the KV manager (eviction order, prefetch)
        self.tracker = DependencyTracker(priority)
        self.trace = TraceRecorder(trace) if isinstance(trace, (str, Path)) else trace
        self._runs: dict[str, WorkflowRun] = {}
        self._held: list[Call] = []
        self._active = 0
        self._wake = anyio.Event()
        self._tg: TaskGroup | None = None
        self._t0 = time.perf_counter()
        self._remaining: dict[tuple[str, str], int] = {}
        self._ids = 0
        self.tool_threads = anyio.CapacityLimiter(tool_threads)
        self.on_tokens = on_tokens
        self.stats = RuntimeStats()

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._dispatch_loop)
        return self

    async def __aexit__(self, *exc_info) -> bool | None:
        assert self._tg is not None
        if exc_info[1] is None:  # on an error the body left, its workflows are cancelled
            for run in list(self._runs.values()):
                await run.ended.wait()
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(*exc_info)

    async def run(
        self, workflow: Workflow, inputs: Iterable[Any], *, timeout: float | None = None
    ) -> list[WorkflowResult]:
        """Run one instance of `workflow` per input, all at once; results keep input order.
        `timeout`: seconds each instance may take (see `submit`)."""
        _ = workflow.graph  # a badly declared workflow fails here, before anything runs
        check_timeout("workflow", timeout)
        async with self:
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
        self._activate(run, run.state.ready)
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

    # -- dispatch ---------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            for call in self._release():
                self._start(call)
            await self._wake.wait()
            self._wake = anyio.Event()

    def _release(self) -> list[Call]:
        if self.barrier:
            if self._active:
                return []
            self._held += self.tracker.pop_ready()
            if not self._held:
                return []
            step = min(c.step for c in self._held)
            now = [c for c in self._held if c.step == step]
            self._held = [c for c in self._held if c.step != step]
            return now
        if self.max_running_agents is None:
            return self.tracker.pop_ready()
        return self.tracker.pop_ready(max(0, self.max_running_agents - self._active))

    def _start(self, call: Call) -> None:
        run: WorkflowRun = call.payload
        if call.cancel_requested or run.result is not None:
            self.tracker.complete(call.id)  # ends cancelled
            return
        run.state.start(call.agent)
        ctx = AgentContext(self, run, call.agent, str(call.id), call.step)
        self._active += 1
        run.active += 1
        assert self._tg is not None
        self._tg.start_soon(self._agent_task, run, call, ctx)

    async def _agent_task(self, run: WorkflowRun, call: Call, ctx: AgentContext) -> None:
        error: BaseException | None = None
        value = None
        limit = run.workflow.timeouts.get(call.agent)
        assert self._tg is not None
        with anyio.CancelScope() as scope:
            run.scopes[call.id] = scope
            deadline = anyio.move_on_after(limit)
            try:
                with deadline:
                    value = await run.workflow.functions[call.agent](ctx)
                if deadline.cancelled_caught:
                    error = AgentTimeoutError(run.workflow_id, call.agent, limit or 0.0)
            except anyio.get_cancelled_exc_class() as exc:
                if scope.cancel_called or deadline.cancel_called:
                    raise
                if self._tg.cancel_scope.cancel_called:
                    raise
                error = AgentExitError(call.agent, exc)  # raised by the agent, not a cancel
                error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - even sys.exit() fails only its workflow
                error = unwrap(exc)
                if not isinstance(error, Exception):
                    error = AgentExitError(call.agent, error)
                    error.__cause__ = exc
        del run.scopes[call.id]
        self._active -= 1
        run.active -= 1
        if scope.cancelled_caught or run.result is not None or run.error is not None:
            self.tracker.complete(call.id)  # cancel was requested: ends cancelled
        elif error is not None:
            self.tracker.fail(call.id, error)
            self._abort(run, error)
        else:
            try:
                self._agent_done(run, call, ctx, value)
            except Exception as exc:  # e.g. goto() to an agent it cannot hand control to
                self.tracker.fail(call.id, exc)
                self._abort(run, exc)
        self._maybe_end(run)
        self._wake.set()

    def _agent_done(self, run: WorkflowRun, call: Call, ctx: AgentContext, value: Any) -> None:
        graph = run.workflow.graph
        targets = ctx.take if ctx.take is not None else graph.successors(call.agent)
        activated = run.state.finish(call.agent, take=ctx.take)
        run.results[call.agent] = value
        self.tracker.complete(call.id)
        for v in targets:
            run.pending_deps[v].add(call.id)
            run.pending_frontier[v] |= ctx.frontier
            run.pending_step[v] = max(run.pending_step.get(v, 0), call.step + 1)
        self._activate(run, activated)
        self._publish(run)

    def _activate(self, run: WorkflowRun, agents: Iterable[str]) -> None:
        for agent in sorted(agents):
            run.runs += 1
            run.activation_frontier[agent] = run.pending_frontier.pop(agent, set())
            self.tracker.add(
                f"{run.workflow_id}#{run.runs}",
                run.pending_deps.pop(agent, set()),
                workflow_id=run.workflow_id,
                agent=agent,
                step=run.pending_step.pop(agent, 0),
                payload=run,
                remaining=self._steps_left(run.workflow, agent),
            )

    def _abort(self, run: WorkflowRun, error: BaseException) -> None:
        if run.error is None:
            run.error = error
        self.tracker.cancel_workflow(run.workflow_id)
        for scope in run.scopes.values():
            scope.cancel()
        self._maybe_end(run)

    def _maybe_end(self, run: WorkflowRun) -> None:
        if run.result is not None or run.active:
            return
        if run.error is None and not run.state.finished:
            return
        exits = run.workflow.exits
        output = (
            run.results.get(exits[0]) if len(exits) == 1 else {e: run.results.get(e) for e in exits}
        )
        self.stats.workflows_done += 1
        self.stats.workflows_failed += run.error is not None
        run.result = WorkflowResult(
            run.workflow_id,
            run.error is None,
            output if run.error is None else None,
            run.results,
            run.error,
            run.llm_calls,
            time.perf_counter() - run.started_at,
            run.input,
        )
        self.hints.end(run.workflow_id)
        self.tracker.forget_workflow(run.workflow_id)
        self._held = [c for c in self._held if c.payload is not run]
        del self._runs[run.workflow_id]
        run.ended.set()

    # -- hints and model calls --------------------------------------------------------

    def _publish(self, run: WorkflowRun) -> None:
        workflow = run.workflow
        ste = steps_to_execution(workflow.graph, run.state)
        self.hints.publish(run.workflow_id, {workflow.agent_id(a): s for a, s in ste.items()})

    def _steps_left(self, workflow: Workflow, agent: str) -> int:
        key = (workflow.name, agent)
        if key not in self._remaining:
            succ = workflow.graph.successors(agent)
            self._remaining[key] = 1 + max((self._steps_left(workflow, s) for s in succ), default=0)
        return self._remaining[key]

    async def llm_call(self, run: WorkflowRun, ctx: AgentContext, text: str, sampling: dict):
        """One model call of an agent: prefix + text, traced with its dependencies."""
        spec = run.workflow.graph.spec(ctx.agent)
        params = make_sampling(ctx.agent, {**spec.sampling, **sampling})
        if isinstance(spec.prefix, tuple):
            prompt = list(spec.prefix) + self.prompts.suffix_ids(text, has_prefix=False)
            prefix_len = len(spec.prefix)
        else:
            prompt, prefix_len = self.prompts.build(spec.prefix, text)
        run.llm_calls += 1
        call_id = f"{run.workflow_id}/{ctx.agent}/{run.llm_calls}"
        parents = sorted(ctx.frontier)
        arrival = time.perf_counter()
        ready_since = max((run.finish_times.get(p, 0.0) for p in parents), default=0.0)
        think = max(0.0, arrival - max(ready_since, ctx.started_at if not parents else 0.0))
        self.stats.llm_calls += 1
        if self.on_tokens is None:
            out = await self.llm.complete(
                prompt, params, agent_id=ctx.agent_id, prefix_len=prefix_len
            )
        else:
            out = await self._streamed(run, ctx, call_id, prompt, params, prefix_len)
        self.stats.output_tokens += len(out.token_ids)
        if out.error:
            raise ModelCallError(f"agent {ctx.agent!r}: model call failed: {out.error}")
        finish = time.perf_counter()
        run.finish_times[call_id] = finish
        ctx.frontier = (ctx.frontier - set(parents)) | {call_id}
        if self.trace is not None:
            first = out.first_token_time  # on the engine's clock (virtual for sim)
            self.trace.write(
                CallRecord(
                    call_id=call_id,
                    workflow_id=run.workflow_id,
                    agent_id=ctx.agent_id,
                    step=ctx.step,
                    parents=parents,
                    think_time_s=think,
                    arrival_s=arrival - self._t0,
                    prompt_len=len(prompt),
                    prefix_len=prefix_len,
                    prompt_token_ids=prompt,
                    output_len=len(out.token_ids),
                    cached_tokens=out.num_cached_tokens,
                    ttft_s=(first - out.arrival_time) if first is not None else None,
                    latency_s=finish - arrival,
                )
            )
        return out

    async def _streamed(
        self,
        run: WorkflowRun,
        ctx: AgentContext,
        call_id: str,
        prompt: list[int],
        params: SamplingParams,
        prefix_len: int,
    ) -> RequestOutput:
        assert self.on_tokens is not None
        shown = 0
        last: RequestOutput | None = None
        outputs = self.llm.generate(prompt, params, agent_id=ctx.agent_id, prefix_len=prefix_len)
        try:
            async with aclosing(outputs):  # leaving early aborts the request at once
                async for last in outputs:
                    delta = last.text[shown:]
                    shown = len(last.text)
                    if delta or last.finished:
                        self.on_tokens(
                            TokenDelta(run.workflow_id, ctx.agent, call_id, delta, last.finished)
                        )
        finally:
            if last is None or not last.finished:  # cut short: the call's stream ends here
                self.on_tokens(TokenDelta(run.workflow_id, ctx.agent, call_id, "", True))
        assert last is not None and last.finished
        return last
