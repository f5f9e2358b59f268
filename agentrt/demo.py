"""`agentrt demo`: a multi-agent town workflow on the runtime and the built-in engine.

For every visitor question, three town agents answer in parallel and the mayor writes the
reply. Every agent's prefix is the same long town handbook (cached once), then its persona.
"""

from __future__ import annotations

import time

import anyio

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.decorators import Workflow
from agentrt.report import format_table
from agentrt.scheduler.runtime import Runtime

HANDBOOK = """You live in Willowbrook, a small river town of about two thousand people.
The town square has a bakery, a library, a clinic, a school and a weekly farmers' market
that opens every Saturday at seven in the morning and closes at one in the afternoon.
The river Wend runs east of the square; the old stone bridge is closed to cars but open
to walkers and bicycles. The town council meets on the first Monday of each month in the
library's reading room, and anyone may speak for three minutes on any topic.
Rules every resident follows: be kind and brief; answer in one or two sentences; when
you do not know something, say so plainly; never invent prices, dates or names that are
not in this handbook. The bakery opens at six and sells bread, rolls and apple pie. The
clinic is open on weekdays from eight to five, and Dr. Amara Osei runs it with two nurses.
The library lends books for three weeks and has a children's corner with a puppet theatre.
The school teaches children from five to eleven years old, and its headteacher is
Mr. Tomas Lind. The farmers' market sells vegetables, honey, eggs, cheese and flowers.
Winter brings snow in January, and the council clears the square before the market opens.
Spring brings the Blossom Fair on the second Saturday of April, with music on the bridge."""

RESIDENTS = {
    "baker": "You are Rosa, the town baker. You talk about bread, pies and early mornings.",
    "doctor": "You are Dr. Amara Osei of the town clinic. You give calm, practical advice.",
    "librarian": "You are Ines, the librarian. You recommend books and know the town's history.",
}
MAYOR = "You are Mayor Helen Brandt. You combine your residents' advice into one friendly reply."

QUESTIONS = [
    "What should I do in Willowbrook on a Saturday morning?",
    "I feel unwell on a Sunday. Where can I get help?",
    "What is special about spring in Willowbrook?",
    "Where can my children spend a rainy afternoon?",
]


def town_workflow(max_tokens: int) -> Workflow:
    wf = Workflow("town")

    def resident(name: str, persona: str) -> None:
        @wf.agent(name=name, prefix=f"{HANDBOOK}\n\n{persona}", max_tokens=max_tokens)
        async def answer(ctx):
            return await ctx.gen(f"A visitor asks: {ctx.input}")

    for name, persona in RESIDENTS.items():
        resident(name, persona)

    @wf.agent(prefix=f"{HANDBOOK}\n\n{MAYOR}", after=list(RESIDENTS), max_tokens=max_tokens)
    async def mayor(ctx):
        advice = "\n".join(f"{n}: {ctx.results[n].strip()}" for n in RESIDENTS)
        return await ctx.gen(f"Visitor question: {ctx.input}\nAdvice:\n{advice}\nReply:")

    return wf


def run_demo(model: str | None = None, device: str = "cpu", max_tokens: int = 48) -> dict:
    start = time.perf_counter()
    engine = LLMEngine.from_config(EngineConfig(model=model, device=device))
    load_s = time.perf_counter() - start
    workflow = town_workflow(max_tokens)

    async def main():
        async with AsyncLLM(engine) as llm:
            runtime = Runtime(llm, PromptBuilder(engine.tokenizer))
            return await runtime.run(workflow, QUESTIONS), runtime.hints.updates

    start = time.perf_counter()
    results, hint_updates = anyio.run(main)
    wall = time.perf_counter() - start
    for question, result in zip(QUESTIONS, results, strict=True):
        print(f"Q: {question}")
        for agent in [*RESIDENTS, "mayor"]:
            print(f"  [{agent}] {str(result.results.get(agent, result.error)).strip()}")
        print()
    stats, kv = engine.stats, engine.kv
    result = {
        "model": engine.config.model or "SmolLM2-135M-Instruct (default)",
        "device": device,
        "workflows": len(results),
        "failed": sum(not r.ok for r in results),
        "llm_calls": sum(r.llm_calls for r in results),
        "load_s": load_s,
        "wall_s": wall,
        "prompt_tokens": stats.prompt_tokens,
        "prefill_tokens_computed": stats.prefill_tokens_computed,
        "prefill_tokens_reused": stats.prefill_tokens_reused,
        "prefix_hit_rate": stats.prefix_hit_rate,
        "generated_tokens": stats.generated_tokens,
        "steps": stats.steps,
        "mean_batch_size": stats.as_dict()["mean_batch_size"],
        "preemptions": stats.preemptions,
        "ste_updates": hint_updates,
        "kv_pages_total": kv.num_pages,
        "kv_pages_cached": kv.tree.cached_pages,
        "page_size": kv.page_size,
    }
    result["output_tok_s"] = result["generated_tokens"] / wall
    rows = [
        ("Workflows (failed)", f"{result['workflows']} ({result['failed']})"),
        ("LLM calls", result["llm_calls"]),
        ("Wall time (s)", result["wall_s"]),
        ("Prompt tokens", result["prompt_tokens"]),
        ("Prefill tokens computed", result["prefill_tokens_computed"]),
        ("Prefill tokens reused (prefix cache)", result["prefill_tokens_reused"]),
        ("Prefix hit rate", result["prefix_hit_rate"]),
        ("Generated tokens", result["generated_tokens"]),
        ("Output throughput (tok/s)", result["output_tok_s"]),
        ("Engine steps", result["steps"]),
        ("Mean batch size", result["mean_batch_size"]),
        ("STE updates published", result["ste_updates"]),
        ("KV pages cached / total", f"{result['kv_pages_cached']} / {result['kv_pages_total']}"),
    ]
    print(format_table("agentrt demo: town workflow", ["metric", "value"], rows))
    return result
