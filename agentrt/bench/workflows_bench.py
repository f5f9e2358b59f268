"""`agentrt bench workflows`: N concurrent instances of a 4-agent fan-out workflow on the
default model, out-of-order release vs. a global step barrier, in one process.

Each instance draws (seeded) its output budget per agent and its scout's tool latency
(0..300 ms). Both runs decode greedily on the same inputs, so only the release order
differs (the bench checks the outputs are identical).
"""

from __future__ import annotations

import random
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


def fan_out_workflow() -> Workflow:
    """scout -> (pros, cons) -> judge: the 4-agent fan-out/fan-in shape. Each instance's
    input carries its topic, its tool latency and its per-agent output budgets."""
    wf = Workflow("fanout")

    @wf.agent(prefix="You introduce topics in one sentence.")
    async def scout(ctx):
        await ctx.tool(anyio.sleep, ctx.input["tool_s"])  # e.g. a web search
        return await ctx.gen(f"Introduce {ctx.input['topic']}.", **_budget(ctx))

    @wf.agent(prefix="You list advantages briefly.", after=[scout])
    async def pros(ctx):
        text = f"Advantages of {ctx.input['topic']}? Context: {ctx.results['scout']}"
        return await ctx.gen(text, **_budget(ctx))

    @wf.agent(prefix="You list drawbacks briefly.", after=[scout])
    async def cons(ctx):
        text = f"Drawbacks of {ctx.input['topic']}? Context: {ctx.results['scout']}"
        return await ctx.gen(text, **_budget(ctx))

    @wf.agent(prefix="You weigh arguments and decide.", after=[pros, cons])
    async def judge(ctx):
        text = f"Pros: {ctx.results['pros']}\nCons: {ctx.results['cons']}"
        return await ctx.gen(text, **_budget(ctx))

    return wf


def _budget(ctx) -> dict:
    return {"max_tokens": ctx.input["tokens"][ctx.agent], "ignore_eos": True}


def make_inputs(instances: int, min_tokens: int, max_tokens: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "topic": TOPICS[i % len(TOPICS)] + ("" if i < len(TOPICS) else f" #{i}"),
            "tool_s": rng.uniform(0.0, 0.3),
            "tokens": {a: rng.randint(min_tokens, max_tokens) for a in AGENTS},
        }
        for i in range(instances)
    ]


AGENTS = ("scout", "pros", "cons", "judge")


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
    instances: int = 16,
    min_tokens: int = 8,
    max_tokens: int = 64,
    model: str | None = None,
    device: str = "cpu",
) -> dict:
    engine = LLMEngine.from_config(EngineConfig(model=model, device=device))
    workflow = fan_out_workflow()
    inputs = make_inputs(instances, min_tokens, max_tokens)
    anyio.run(_run_mode, engine, workflow, inputs[:2], False)  # warm-up
    barrier = anyio.run(_run_mode, engine, workflow, inputs, True)
    ooo = anyio.run(_run_mode, engine, workflow, inputs, False)
    same = barrier.pop("outputs") == ooo.pop("outputs")
    return {
        "instances": instances,
        "agents_per_workflow": len(AGENTS),
        "tokens_per_call": [min_tokens, max_tokens],
        "tool_latency_s": [0.0, 0.3],
        "barrier": barrier,
        "out_of_order": ooo,
        "speedup": barrier["wall_s"] / ooo["wall_s"],
        "identical_outputs": same,
    }
