"""Agents' model calls: the path from `ctx.gen` to the `CompletionClient`.

A call's prompt is the agent's fixed prefix followed by the call's text; each call is
traced with the model calls it depends on (its agent's *frontier*).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentrt.engine.call_info import CallInfo
from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.prompt import PromptBuilder
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.agent_options import make_sampling
from agentrt.scheduler.errors import ModelCallError
from agentrt.scheduler.workflow_run import RuntimeStats, WorkflowRun
from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import CallRecord

if TYPE_CHECKING:
    from agentrt.scheduler.context import AgentContext


@dataclass(frozen=True)
class TokenDelta:
    """New output text of one model call (`Runtime(on_tokens=...)`); `finished` on its
    last, also when the call is cut short (cancelled, timed out, failed)."""

    workflow_id: str
    agent: str
    call_id: str
    text: str
    finished: bool


class ModelCalls:
    """Turns an agent's `ctx.gen` into one client request, counts and traces it."""

    def __init__(
        self,
        client: CompletionClient,
        prompts: PromptBuilder,
        stats: RuntimeStats,
        trace: TraceRecorder | None,
        on_tokens: Callable[[TokenDelta], None] | None,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.stats = stats
        self.trace = trace
        self.on_tokens = on_tokens
        self._t0 = time.perf_counter()

    async def call(
        self, run: WorkflowRun, ctx: AgentContext, text: str, sampling: dict[str, Any]
    ) -> RequestOutput:
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
        info = CallInfo(ctx.agent_id, prefix_len, run.workflow_id, call_id, tuple(parents))
        arrival = time.perf_counter()
        ready_since = max((run.finish_times.get(p, 0.0) for p in parents), default=0.0)
        think = max(0.0, arrival - max(ready_since, ctx.started_at if not parents else 0.0))
        self.stats.llm_calls += 1
        if self.on_tokens is None:
            out = await self.client.complete(prompt, params, info)
        else:
            out = await self._streamed(run, ctx, info, prompt, params)
        self.stats.output_tokens += len(out.token_ids)
        if out.error:
            raise ModelCallError(f"agent {ctx.agent!r}: model call failed: {out.error}")
        finish = time.perf_counter()
        run.finish_times[call_id] = finish
        ctx.frontier = (ctx.frontier - set(parents)) | {call_id}
        ctx.last_call_id = call_id
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
        info: CallInfo,
        prompt: list[int],
        params: SamplingParams,
    ) -> RequestOutput:
        assert self.on_tokens is not None and info.call_id is not None
        call_id = info.call_id
        shown = 0
        last: RequestOutput | None = None
        outputs = self.client.generate(prompt, params, info)
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
