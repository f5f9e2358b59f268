"""The KVFlow paper's two workload shapes as real `Workflow`s with token-id prompts.

- ``single``: one chain a1 -> ... -> aN whose last agent loops back to the first
  (``rounds`` visits in all), so the first agent is one step away while the last runs.
- ``concurrent``: ``instances`` instances at once of the same shape (4 agents by default).

Every agent has its own fixed prefix (the same in every instance); each call adds a
dynamic part unique per instance, visit and agent. Prompts are token ids end to end (a
space-separated id list read back by ``IdsTokenizer``), so sizes are exact on every backend.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from agentrt.graph.decorators import Workflow

RoundHook = Callable[[int, int], None]


class IdsTokenizer:
    """`PromptBuilder` tokenizer for prompts that already are ids: "12 7 99" -> [12, 7, 99]."""

    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [int(t) for t in text.split()]


@dataclass
class KVFlowWorkload:
    """Sizes of one scenario (tokens) and the derived inputs."""

    scenario: str
    agents: int
    instances: int
    rounds: int
    prefix: int
    dynamic: int
    output: int
    vocab: int = 30_000
    seed: int = 0
    prefixes: list[tuple[int, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        top = min(self.vocab, 30_000)
        self.prefixes = [
            tuple(rng.randrange(3, top) for _ in range(self.prefix)) for _ in range(self.agents)
        ]

    @property
    def name(self) -> str:
        return f"kvflow-{self.scenario}"

    def agent_ids(self) -> list[str]:
        return [f"{self.name}/a{i + 1}" for i in range(self.agents)]

    def dynamic_ids(self, instance: int, visit: int, agent: int) -> list[int]:
        """The dynamic part of one call (deterministic, unique per call)."""
        rng = random.Random(f"{self.seed}/{instance}/{visit}/{agent}")
        top = min(self.vocab, 30_000)
        return [rng.randrange(3, top) for _ in range(self.dynamic)]

    def inputs(self) -> list[dict]:
        """One input per instance."""
        return [{"instance": i} for i in range(self.instances)]

    def future_calls(self, rounds: int | None = None) -> list[str]:
        """The order of agent calls (for ``belady``): the instances advance together, so
        call k of the chain is made by every instance before call k + 1 starts."""
        order = self.agent_ids() * (self.rounds if rounds is None else rounds)
        return [a for a in order for _ in range(self.instances)]

    def workflow(
        self, rounds: int | None = None, on_round_start: RoundHook | None = None
    ) -> Workflow:
        """The chain a1 -> ... -> aN with the back edge aN -> a1 taken ``rounds - 1`` times
        (default: the workload's rounds); each call generates ``output`` tokens.
        ``on_round_start(instance, round)`` (1-based) runs as a1 starts each round."""
        rounds = self.rounds if rounds is None else rounds
        wf = Workflow(self.name)
        previous = first = None
        for index in range(self.agents):
            last = index == self.agents - 1
            options: dict = {"after": [previous] if previous is not None else []}
            if last and rounds > 1:
                options.update(loop_to=first, max_loops=rounds - 1)
            agent = wf.agent(
                self._agent_fn(index, rounds if last else 0, on_round_start),
                name=f"a{index + 1}",
                prefix=self.prefixes[index],
                max_tokens=self.output,
                ignore_eos=True,
                **options,
            )
            first = first or agent
            previous = agent
        return wf

    def _agent_fn(self, index: int, loop_rounds: int, on_round_start: RoundHook | None):
        async def call(ctx) -> str:
            if index == 0 and on_round_start is not None:
                on_round_start(ctx.input["instance"], ctx.visit)
            ids = self.dynamic_ids(ctx.input["instance"], ctx.visit, index)
            result = await ctx.gen(" ".join(map(str, ids)))
            if loop_rounds and ctx.visit < loop_rounds:
                ctx.goto("a1")
            return result

        return call


def single(
    prefix: int, dynamic: int, output: int, rounds: int, agents: int = 10, vocab: int = 30_000
) -> KVFlowWorkload:
    return KVFlowWorkload("single", agents, 1, rounds, prefix, dynamic, output, vocab)


def concurrent(
    prefix: int,
    dynamic: int,
    output: int,
    rounds: int,
    instances: int,
    agents: int = 4,
    vocab: int = 30_000,
) -> KVFlowWorkload:
    return KVFlowWorkload("concurrent", agents, instances, rounds, prefix, dynamic, output, vocab)
