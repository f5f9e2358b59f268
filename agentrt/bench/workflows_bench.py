"""`agentrt bench workflows`: N concurrent instances of a 4-agent fan-out workflow on the
default model, out-of-order release vs. a global step barrier, in one process.

Both runs use greedy decoding on the same inputs and engine settings, so they do the same
model work (the bench checks the outputs are identical); only the release order differs.
"""

from __future__ import annotations

import time

import anyio

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.decorators import Workflow
from agentrt.scheduler.runtime import Runtime

TOPICS = [
    "bicycles",
    "volcanoes",
    "honey bees",
    "lighthouses",
    "chess",
    "tea",
    "glaciers",
    "owls",
    "bridges",
    "jazz",
    "tides",
    "mushrooms",
    "comets",
    "bread",
    "kites",
    "coral",
]


def fan_out_workflow(max_tokens: int) -> Workflow:
    """scout -> (pros, cons) -> judge: the 4-agent fan-out/fan-in shape."""
    wf = Workflow("fanout")

    @wf.agent(prefix="You introduce topics in one sentence.", max_tokens=max_tokens)
    async def scout(ctx):
        return await ctx.gen(f"Introduce {ctx.input}.")

    @wf.agent(prefix="You list advantages briefly.", after=[scout], max_tokens=max_tokens)
    async def pros(ctx):
        return await ctx.gen(f"Advantages of {ctx.input}? Context: {ctx.results['scout']}")

    @wf.agent(prefix="You list drawbacks briefly.", after=[scout], max_tokens=max_tokens)
    async def cons(ctx):
        return await ctx.gen(f"Drawbacks of {ctx.input}? Context: {ctx.results['scout']}")

    @wf.agent(prefix="You weigh arguments and decide.", after=[pros, cons], max_tokens=max_tokens)
    async def judge(ctx):
        return await ctx.gen(f"Pros: {ctx.results['pros']}\nCons: {ctx.results['cons']}")

    return wf


async def _run_mode(engine: LLMEngine, workflow: Workflow, inputs: list[str], barrier: bool):
    batches_before = len(engine.stats.batch_sizes)
    engine.reset_prefix_cache()
    start = time.perf_counter()
    async with AsyncLLM(engine) as llm:
        runtime = Runtime(llm, PromptBuilder(engine.tokenizer), barrier=barrier)
        results = await runtime.run(workflow, inputs)
    wall = time.perf_counter() - start
    batches = engine.stats.batch_sizes[batches_before:]
    return {
        "wall_s": wall,
        "llm_calls": sum(r.llm_calls for r in results),
        "engine_steps": len(batches),
        "mean_batch": sum(batches) / len(batches) if batches else 0.0,
        "failed": sum(not r.ok for r in results),
        "outputs": [r.results for r in results],
    }


def run_workflows_bench(
    instances: int = 16, max_tokens: int = 32, model: str | None = None, device: str = "cpu"
) -> dict:
    engine = LLMEngine.from_config(EngineConfig(model=model, device=device))
    workflow = fan_out_workflow(max_tokens)
    inputs = [
        TOPICS[i % len(TOPICS)] + ("" if i < len(TOPICS) else f" #{i}") for i in range(instances)
    ]
    anyio.run(_run_mode, engine, workflow, inputs[:2], False)  # warm-up
    barrier = anyio.run(_run_mode, engine, workflow, inputs, True)
    ooo = anyio.run(_run_mode, engine, workflow, inputs, False)
    same = barrier.pop("outputs") == ooo.pop("outputs")
    return {
        "instances": instances,
        "agents_per_workflow": 4,
        "max_tokens": max_tokens,
        "barrier": barrier,
        "out_of_order": ooo,
        "speedup": barrier["wall_s"] / ooo["wall_s"],
        "identical_outputs": same,
    }
