"""`LLMStepExecutor`: runs an agent step's LLM calls on real models (`AsyncLLM`s in
process, or an `OpenAIBackend` on a server).

A plan's calls run in order, each prompt ``PromptBuilder.build(plan.prefix, call_text(...))``
(the persona is the cached prefix), sampled greedily as ``CallInfo(agent_key(agent), prefix_len)``
on the agent's replica (`Router`). ``publish_hints`` sends each replica's KV manager the
steps-to-execution of the agents it owns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from agentrt.engine.call_info import CallInfo
from agentrt.engine.completion_client import CompletionClient
from agentrt.engine.prompt import PromptBuilder
from agentrt.engine.sampling_params import SamplingParams
from agentrt.scheduler.errors import ModelCallError
from agentrt.simulation.router import Router
from agentrt.simulation.ste import HintedScheduler, agent_key
from agentrt.simulation.world import AgentStepPlan, call_text


class LLMStepExecutor:
    """An `AsyncStepExecutor` over one or more replicas (`CompletionClient`s)."""

    def __init__(
        self,
        llms: Sequence[CompletionClient],
        builders: Sequence[PromptBuilder],
        *,
        router: Router | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """``max_tokens``: cap on every call's ``max_tokens`` (None: the plan's)."""
        if not llms:
            raise ValueError("need at least one AsyncLLM")
        self.llms = list(llms)
        self.router = router or Router(len(self.llms))
        if self.router.replicas != len(self.llms):
            raise ValueError("the router's replica count must match the engines")
        self.builders = list(builders)  # one per replica: its model's prompts
        self.token_cap = max_tokens or sys.maxsize

    async def run(self, plan: AgentStepPlan) -> list[str]:
        """One completion text per ``plan.calls`` entry, in order."""
        agent = agent_key(plan.agent)
        texts: list[str] = []
        for k, call in enumerate(plan.calls):
            r = self.router.route(agent)
            try:
                text = call_text(plan.calls, k, texts)
                ids, prefix_len = self.builders[r].build(plan.prefix, text)
                limit = min(call.max_tokens, self.token_cap)
                params = SamplingParams(max_tokens=limit)  # temperature 0: greedy
                out = await self.llms[r].complete(ids, params, CallInfo(agent, prefix_len))
            finally:
                self.router.done(r)
            if out.error:  # a remote call that failed (in process, `complete` raises)
                raise ModelCallError(f"agent {agent}: model call failed: {out.error}")
            texts.append(out.text)
        return texts

    def publish_hints(self, sched: HintedScheduler) -> None:
        """Send each replica the STE of the agents it owns (`agentrt.simulation.ste`)."""
        for r, llm in enumerate(self.llms):
            owned = [int(a.split("/", 1)[1]) for a in self.router.agents_of(r)]
            if owned:
                ste = sched.ste(owned)
                llm.update_steps_to_execution({agent_key(i): v for i, v in ste.items()})
