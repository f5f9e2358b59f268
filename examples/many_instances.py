"""Many concurrent instances of one workflow sharing the engine and its prefix cache.

agentrt run examples/many_instances.py
"""

from agentrt import Workflow

workflow = Workflow("support")

HANDBOOK = (
    "You work at the help desk of Willowbrook library. The library opens 9-18 on weekdays "
    "and 10-14 on Saturdays, lends books for three weeks, and renews once online."
)


@workflow.agent(prefix=HANDBOOK + " Classify the question as HOURS, LOANS or OTHER.", max_tokens=6)
async def triage(ctx):
    return await ctx.gen(ctx.input)


@workflow.agent(prefix=HANDBOOK + " Answer in one sentence.", after=[triage], max_tokens=40)
async def answer(ctx):
    return await ctx.gen(f"Category: {ctx.results['triage']}\nQuestion: {ctx.input}")


inputs = [
    "When do you open on Saturday?",
    "How long can I keep a book?",
    "Can I renew a loan?",
    "Do you have a cafe?",
    "Are you open on Sunday?",
    "How many times can I renew?",
    "What time do you close on Monday?",
    "Can I return books by mail?",
]
