"""Runtime overhead per agent call, with the model taken out of the measurement.

An instant completion client answers every call at once, so the wall time is the
runtime's own work: tracker, workflow state, STE publishing, prompt assembly, tasks.
"""

from __future__ import annotations

import time

import anyio

from agentrt.bench.kvflow_workloads import IdsTokenizer
from agentrt.engine.call_info import CallInfo
from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.prompt import PromptBuilder
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.decorators import Workflow
from agentrt.scheduler.runtime import Runtime


class InstantClient(CompletionClient):
    """Answers every completion immediately with one token (a measurement harness); no
    KV cache and no server, so the notifications are `CompletionClient`'s no-ops."""

    async def complete(
        self, prompt: list[int], params: SamplingParams, call: CallInfo
    ) -> RequestOutput:
        token = [prompt[-1]]
        return RequestOutput(call.call_id or "", prompt, token, token, "ok", finished=True)


def _fan_out() -> Workflow:
    wf = Workflow("overhead")

    @wf.agent(prefix="1")
    async def a(ctx):
        return await ctx.gen("5")

    @wf.agent(prefix="2", after=[a])
    async def b(ctx):
        return await ctx.gen("6")

    @wf.agent(prefix="3", after=[a])
    async def c(ctx):
        return await ctx.gen("7")

    @wf.agent(prefix="4", after=[b, c])
    async def d(ctx):
        return await ctx.gen("8")

    return wf


def runtime_overhead(workflows: int = 2000) -> dict:
    async def main() -> float:
        runtime = Runtime(InstantClient(), PromptBuilder(IdsTokenizer()))
        start = time.perf_counter()
        results = await runtime.run(_fan_out(), range(workflows))
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results)
        return elapsed

    seconds = anyio.run(main)
    calls = workflows * 4
    return {"agent_calls": calls, "seconds": seconds, "overhead_us_per_call": seconds / calls * 1e6}
