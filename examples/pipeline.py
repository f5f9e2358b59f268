"""Sequential pipeline with a bounded loop: planner -> coder -> reviewer (-> coder, <= 2x).

agentrt run examples/pipeline.py
"""

from agentrt import Workflow

workflow = Workflow("pipeline")


@workflow.agent(prefix="You are a planner. Reply with a short numbered plan.", max_tokens=48)
async def planner(ctx):
    return await ctx.gen(f"Plan how to write a Python function that {ctx.input}.")


@workflow.agent(
    prefix="You are a Python programmer. Reply with code only.", after=[planner], max_tokens=64
)
async def coder(ctx):
    feedback = ctx.results.get("reviewer", "none yet")
    return await ctx.gen(f"Plan:\n{ctx.results['planner']}\nReviewer feedback: {feedback}")


@workflow.agent(
    prefix="You are a strict code reviewer. Say APPROVED if the code is fine.",
    after=[coder],
    loop_to=coder,
    max_loops=2,
    max_tokens=32,
)
async def reviewer(ctx):
    verdict = await ctx.gen(f"Review this code:\n{ctx.results['coder']}")
    if "APPROVED" not in verdict and ctx.visit <= 2:
        ctx.goto("coder")  # take the bounded back edge
    return verdict


inputs = ["reverses a string", "checks whether a number is prime"]
