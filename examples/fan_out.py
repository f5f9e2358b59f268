"""Fan-out / fan-in: a coordinator, three specialists in parallel, one synthesizer.

agentrt run examples/fan_out.py
"""

from agentrt import Workflow

workflow = Workflow("trip")


@workflow.agent(prefix="You coordinate a trip plan. Name the city and the season.", max_tokens=24)
async def coordinator(ctx):
    return await ctx.gen(f"We want to visit {ctx.input}. Summarize the goal in one line.")


SPECIALISTS = {
    "food": "You are a food critic. Suggest two dishes to try.",
    "sights": "You are a tour guide. Suggest two sights to see.",
    "budget": "You are a budget advisor. Give two money-saving tips.",
}


def specialist(name: str, prefix: str):
    @workflow.agent(name=name, prefix=prefix, after=[coordinator], max_tokens=40)
    async def advise(ctx):
        return await ctx.gen(f"Trip goal: {ctx.results['coordinator']}")

    return advise


for _name, _prefix in SPECIALISTS.items():
    specialist(_name, _prefix)


@workflow.agent(
    prefix="You write a friendly three-sentence trip summary.",
    after=list(SPECIALISTS),
    max_tokens=64,
)
async def synthesizer(ctx):
    notes = "\n".join(f"{k}: {ctx.results[k]}" for k in SPECIALISTS)
    return await ctx.gen(f"Notes:\n{notes}")


inputs = ["Lisbon in spring"]
