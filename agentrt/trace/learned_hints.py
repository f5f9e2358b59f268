"""`--policy kvflow-learned`: a replay whose KV manager gets the steps-to-execution a
server would learn from the same traffic (`agentrt.learn`), optionally starting from a
graph a server exported (`GET /v1/workflows/learned`, `agentrt replay --graph FILE`).

Each call's start and end go to a `LearnedGraphs` under its record's workflow and agent
ids (times on the engine's clock); after each, the learned STE of every agent goes to the
engine (`kv.update_hints`), as `agentrt serve` does for requests without a declared graph.
"""

from __future__ import annotations

from pathlib import Path

from agentrt.learn import LearnedGraphs, LearnerConfig, import_learned, read_learned
from agentrt.trace.schema import CallRecord

LEARNED_POLICY = "kvflow-learned"


class LearnedReplayHints:
    def __init__(self, graph: str | Path | None = None, now: float = 0.0) -> None:
        # as the server: a transition seen once is acted on (serve/agents.py)
        self.graphs = LearnedGraphs(LearnerConfig(min_observations=1))
        if graph is not None:
            import_learned(read_learned(graph), self.graphs, now)

    def started(self, record: CallRecord, now: float) -> dict[str, float]:
        self.graphs.start(record.workflow_id, record.agent_id, now)
        return self.graphs.agent_ste(now)

    def finished(self, record: CallRecord, now: float) -> dict[str, float]:
        self.graphs.finish(record.workflow_id, record.agent_id, now)
        return self.graphs.agent_ste(now)
