"""`agentrt bench serve --workload kvflow-single|kvflow-concurrent`: multi-agent programs
through HTTP clients, one server per mode, side by side.

Each workflow instance is one client running the KVFlow shape (`bench.kvflow_workloads`):
agents a1 -> ... -> aN in a loop, each call a chat request whose system message is the
agent's fixed prefix (the same in every instance) and whose user message is a fresh
dynamic part. Modes differ only in the server's eviction policy and what the client tells
it:

- `lru`, `hicache`: those policies, no hints;
- `kvflow-declared`: kvflow; each instance declares its graph (`POST /v1/workflows`) and
  every request names its workflow and agent;
- `kvflow-learned`: kvflow; no hints at all (the server identifies agents by their fixed
  prefix and learns the transitions).

Every instance first runs one round as warm-up; the measurement window opens when the
last instance starts round 2 and closes when the last one ends. Times are on the engine's
clock, read from `/metrics` (`agentrt:engine_clock_seconds`): virtual seconds on `sim`,
so the HTTP round trips of the load generator are not counted there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio
import orjson
from prometheus_client.parser import text_string_to_metric_families

from agentrt.bench.kvflow_workloads import KVFlowWorkload
from agentrt.serve.bench_client import client_session

MODES = ("lru", "hicache", "kvflow-declared", "kvflow-learned")
POLICY = {
    "lru": "lru",
    "hicache": "hicache",
    "kvflow-declared": "kvflow",
    "kvflow-learned": "kvflow",
}
JSON = {"Content-Type": "application/json"}


@dataclass
class AgentTexts:
    """The workload as chat text: each agent's system message, each call's user message."""

    workload: KVFlowWorkload
    tokenizer: object
    systems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.systems = [self.tokenizer.decode(list(p)) for p in self.workload.prefixes]

    def user(self, instance: int, visit: int, agent: int) -> str:
        return self.tokenizer.decode(self.workload.dynamic_ids(instance, visit, agent))


Series = list[tuple[str, dict[str, str], float]]


def read_metrics(text: bytes) -> Series:
    """Every sample of a /metrics page, parsed by prometheus-client: (name, labels, value)."""
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    ]


def _total(metrics: Series, name: str, tier: str | None = None) -> float:
    """The sum of `name`'s samples (those of prefix-cache `tier`, if given)."""
    return sum(
        v for n, labels, v in metrics if n == name and (tier is None or labels["tier"] == tier)
    )


def prefix_hits(metrics: Series) -> tuple[float, float, float]:
    return (
        _total(metrics, "agentrt:prefix_cache_queries_total"),
        _total(metrics, "agentrt:prefix_cache_hits_total", "device"),
        _total(metrics, "agentrt:prefix_cache_hits_total", "host"),
    )


async def run_agent_clients(base_url: str, texts: AgentTexts, mode: str) -> dict:
    """All instances of the workload against one server; the window's figures."""
    wl = texts.workload
    names = [f"{wl.name}/a{k + 1}" for k in range(wl.agents)]
    rounds = wl.rounds + 1  # the warm-up round first
    started_round2: set[int] = set()
    window: dict[str, object] = {}
    failures: list[str] = []
    async with client_session(base_url, wl.instances, 3600) as session:

        async def metrics() -> Series:
            async with session.get("/metrics") as r:
                return read_metrics(await r.read())

        async with session.get("/v1/models") as r:
            model = (await r.json())["data"][0]["id"]

        async def instance(i: int) -> None:
            workflow_id = f"{wl.name}-{i}"
            if mode == "kvflow-declared":
                edges = [[a, b] for a, b in zip(names, names[1:], strict=False)]
                if rounds > 1:
                    edges.append([names[-1], names[0], rounds - 1])
                body = {"workflow_id": workflow_id, "graph": {"edges": edges, "agents": names}}
                async with session.post(
                    "/v1/workflows", data=orjson.dumps(body), headers=JSON
                ) as r:
                    if r.status != 200:
                        failures.append(f"declare: {r.status} {await r.text()}")
                        return
            for visit in range(1, rounds + 1):
                if visit == 2:
                    started_round2.add(i)
                    if len(started_round2) == wl.instances:
                        window["start"] = await metrics()
                for k in range(wl.agents):
                    body = {
                        "model": model,
                        "messages": [
                            {"role": "system", "content": texts.systems[k]},
                            {"role": "user", "content": texts.user(i, visit, k)},
                        ],
                        "max_tokens": wl.output,
                        "ignore_eos": True,
                        "temperature": 0,
                    }
                    if mode == "kvflow-declared":
                        body.update(workflow_id=workflow_id, agent_id=names[k])
                    async with session.post(
                        "/v1/chat/completions", data=orjson.dumps(body), headers=JSON
                    ) as r:
                        if r.status != 200:
                            failures.append(f"call: {r.status} {await r.text()}")
                            return

        wall = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(wl.instances):
                tg.start_soon(instance, i)
        end = await metrics()
        wall = time.perf_counter() - wall
    start = window.get("start") or []
    clock = _total(end, "agentrt:engine_clock_seconds") - _total(
        start, "agentrt:engine_clock_seconds"
    )
    q0, d0, h0 = prefix_hits(start)
    q1, d1, h1 = prefix_hits(end)
    queries = q1 - q0
    return {
        "mode": mode,
        "policy": POLICY[mode],
        "e2e_s": clock,
        "wall_s": wall,
        "device_hit_rate": (d1 - d0) / queries if queries else 0.0,
        "host_hit_rate": (h1 - h0) / queries if queries else 0.0,
        "calls": wl.instances * wl.agents * rounds,
        "failures": failures,
    }
