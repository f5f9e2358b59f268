"""`agentrt bench serve --workload tool-agent`: ReAct loops with tool pauses, through HTTP.

Every workflow is one client: a shared system prompt and tool, a task of its own, then
`turns` rounds of a forced tool call, a pause of 50 ms to 5 s (log-uniform, seeded: the
same in every mode) and the tool's result appended, then a last answer with
`is_last_step`. Job completion times are wall-clock; the hit rates come from the
server's `/metrics` before and after.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import aiohttp
import anyio
import orjson

from agentrt.serve.bench_agents import JSON, prefix_hits, read_metrics

TOOL_MODES = ("lru", "hicache", "lru+pin", "hicache+pin")
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Look something up in the town archive.",
        "parameters": {
            "type": "object",
            "properties": {"topic": {"enum": ["market", "weather", "harbour", "school"]}},
            "required": ["topic"],
        },
    },
}
WORDS = [
    "ledger",
    "harbour",
    "grain",
    "ferry",
    "lantern",
    "orchard",
    "mill",
    "bridge",
    "tariff",
    "census",
    "council",
    "well",
    "quarry",
    "beacon",
    "granary",
    "toll",
    "cart",
    "wharf",
    "loom",
    "forge",
    "cellar",
    "charter",
    "guild",
    "almanac",
]


@dataclass
class ToolAgentWorkload:
    """`workflows` ReAct agents at once, each `turns` tool calls then an answer: one
    system prompt and tool schema for all, a task per workflow, a tool result of
    `result_words` words after each call, and a pause before it of 50 ms to 5 s
    (log-uniform, seeded; the same in every mode)."""

    workflows: int = 8
    turns: int = 4
    result_words: int = 60
    system_words: int = 200
    pause_min_s: float = 0.05
    pause_max_s: float = 5.0
    seed: int = 0

    def _rng(self, *key: object) -> random.Random:
        return random.Random("/".join(map(str, (self.seed, *key))))

    @property
    def system(self) -> str:
        rng = self._rng("system")
        return "You are a town archivist. " + " ".join(
            rng.choice(WORDS) for _ in range(self.system_words)
        )

    def task(self, w: int) -> str:
        return f"Task {w}: write a short note about the town. " + " ".join(
            self._rng("task", w).choice(WORDS) for _ in range(20)
        )

    def result(self, w: int, turn: int) -> str:
        return " ".join(
            self._rng("result", w, turn).choice(WORDS) for _ in range(self.result_words)
        )

    def pause(self, w: int, turn: int) -> float:
        lo, hi = math.log(self.pause_min_s), math.log(self.pause_max_s)
        return math.exp(self._rng("pause", w, turn).uniform(lo, hi))


async def run_tool_agents(base_url: str, wl: ToolAgentWorkload) -> dict:
    """Every workflow of `wl` against one server; job completion times (wall clock)."""
    jct: list[float] = []
    pinned = [0]
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=wl.workflows + 4)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=3600)
    ) as session:
        async with session.get("/v1/models") as r:
            model = (await r.json())["data"][0]["id"]
        async with session.get("/metrics") as r:
            before = read_metrics(await r.read())

        async def post(body: dict) -> dict | None:
            async with session.post(
                "/v1/chat/completions", data=orjson.dumps(body), headers=JSON
            ) as r:
                if r.status != 200:
                    failures.append(f"{r.status} {await r.text()}")
                    return None
                return await r.json()

        async def workflow(w: int) -> None:
            start = time.perf_counter()
            messages = [
                {"role": "system", "content": wl.system},
                {"role": "user", "content": wl.task(w)},
            ]
            for turn in range(wl.turns):
                body = {
                    "model": model,
                    "messages": messages,
                    "tools": [SEARCH],
                    "tool_choice": {"type": "function", "function": {"name": "search"}},
                    "max_tokens": 32,
                    "temperature": 0,
                }
                answer = await post(body)
                if answer is None:
                    return
                message = answer["choices"][0]["message"]
                pinned[0] += answer["x_agentrt"]["pinned_until"] is not None
                calls = message.get("tool_calls") or []
                if not calls:
                    failures.append(f"workflow {w} turn {turn}: no tool call")
                    return
                messages.append({"role": "assistant", "content": None, "tool_calls": calls})
                await anyio.sleep(wl.pause(w, turn))
                messages.append(
                    {"role": "tool", "tool_call_id": calls[0]["id"], "content": wl.result(w, turn)}
                )
            final = {
                "model": model,
                "messages": messages,
                "max_tokens": 16,
                "temperature": 0,
                "is_last_step": True,
            }
            if await post(final) is not None:
                jct.append(time.perf_counter() - start)

        wall = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for w in range(wl.workflows):
                tg.start_soon(workflow, w)
        wall = time.perf_counter() - wall
        async with session.get("/metrics") as r:
            after = read_metrics(await r.read())
    q0, d0, h0 = prefix_hits(before)
    q1, d1, h1 = prefix_hits(after)
    queries = q1 - q0
    ordered = sorted(jct)
    return {
        "jct_mean_s": sum(jct) / len(jct) if jct else float("nan"),
        "jct_p50_s": ordered[len(ordered) // 2] if ordered else float("nan"),
        "jct_max_s": ordered[-1] if ordered else float("nan"),
        "wall_s": wall,
        "device_hit_rate": (d1 - d0) / queries if queries else 0.0,
        "host_hit_rate": (h1 - h0) / queries if queries else 0.0,
        "pinned_answers": pinned[0],
        "failures": failures,
    }
