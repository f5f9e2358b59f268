"""Background prefetch of due agents' prefixes from host to device.

Contract: ``plan(agent_ste)`` (engine thread) starts loads for the remembered fixed prefix
of every agent with STE <= k, nearest first, evicting only device nodes the policy ranks
strictly below the prefix being loaded (``policy.prefetch_bound``). Prefetch loads of
agents no longer due are cancelled when still queued (the backend has not started them);
loads already running complete normally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agentrt.kvmanager.host_tier import HostTier, PendingLoad
from agentrt.kvmanager.stats import KVStats


class Prefetcher:
    def __init__(
        self,
        host: HostTier,
        prefixes: Mapping[str, tuple[int, ...]],
        submit: Callable[[PendingLoad], None],
        stats: KVStats,
        k: float = 1,
    ) -> None:
        self.host = host
        self.prefixes = prefixes
        self.submit = submit
        self.stats = stats
        self.k = k

    def plan(self, agent_ste: Mapping[str, float]) -> None:
        due = sorted((s, a) for a, s in agent_ste.items() if s <= self.k)
        due_agents = {a for _, a in due}
        host = self.host
        for pending in list(host.inflight):
            if pending.meta.get("prefetch") in due_agents or pending.meta.get("waiters"):
                continue
            if pending.meta.get("prefetch") is not None and pending.future.cancel():
                host.finish_load(pending, ok=False)
                self.stats.prefetch_cancelled += 1
        for _, agent in due:
            tokens = self.prefixes.get(agent)
            if not tokens:
                continue
            found = host.match(tokens)
            if not found.nodes or found.loading:
                continue
            bound = host.tree.policy.prefetch_bound(found.nodes[-1])
            pending = host.start_load(found.nodes, bound)
            if pending is None:
                continue
            pending.meta["prefetch"] = agent
            self.stats.prefetch_loads += 1
            self.submit(pending)
