"""`agentrt bench serve --workload tool-agent`: ReAct loops with tool pauses, through HTTP.

Every workflow is one client: a shared system prompt and three tools, a task of its
own, then `turns` rounds of a forced call of one of the tools, the tool's pause and its
result appended, then a last answer with `is_last_step`. The tools pause as tools of
their kind do, together 50 ms to 5 s: `calculator` 50-200 ms, `search` 0.3-1.5 s,
`run_code` 1.5-5 s (log-uniform within each; the tool of each turn and its pause are
seeded, the same in every mode). Job completion times are wall-clock; the hit rates
come from the server's `/metrics` before and after. On `sim` the same clients run in
process on the engine's virtual clock (`bench_tool_agent_sim`).
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
from agentrt.serve.bench_client import client_session

# policy[+wait][+pin rule]. `hicache` is SGLang's HiCache: a host-held prefix the device
# has no room for is recomputed; `+wait` is agentrt's host tier, where the request waits
# for room (`--recompute-when-no-room` off). `+pin` pins by the cost rule, `+pin-pause`
# every pause (`--pin-rule`).
TOOL_MODES = (
    "lru", "hicache", "lru+pin", "hicache+pin", "lru+pin-pause", "hicache+wait",
    "hicache+wait+pin",
)  # fmt: skip


@dataclass(frozen=True)
class ToolMode:
    policy: str
    pin_rule: str | None  # None: no pins
    waits_for_room: bool


def mode_parts(mode: str) -> ToolMode:
    """A mode's eviction policy, pin rule and host-load fallback."""
    policy, *parts = mode.split("+")
    waits = "wait" in parts
    pins = [p for p in parts if p != "wait"]
    rule = {(): None, ("pin",): "cost", ("pin-pause",): "pause"}[tuple(pins)]
    return ToolMode(policy, rule, waits)


def _tool(name: str, description: str, arg: str, values: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {arg: {"enum": values}},
                "required": [arg],
            },
        },
    }


TOOLS = [
    _tool("calculator", "Add up the town's figures.", "sum", ["tolls", "grain", "census"]),
    _tool("search", "Look something up in the town archive.", "topic",
          ["market", "weather", "harbour", "school"]),
    _tool("run_code", "Run a script over the archive.", "script", ["tally", "sort", "merge"]),
]  # fmt: skip
PAUSES_S = {"calculator": (0.05, 0.2), "search": (0.3, 1.5), "run_code": (1.5, 5.0)}
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
    system prompt and tool schemas for all, a task per workflow, a tool result of
    `result_words` words after each call, and the called tool's pause before it
    (seeded; the same in every mode). `answer_tokens`: the length of a tool-call turn
    on `sim` (a forced call's arguments and some reasoning; on a real model the
    grammar ends it). `pause_scale` multiplies every pause (tests shorten them)."""

    workflows: int = 8
    turns: int = 4
    result_words: int = 60
    system_words: int = 200
    answer_tokens: int = 32
    pause_scale: float = 1.0
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

    def tool(self, w: int, turn: int) -> str:
        return self._rng("tool", w, turn).choice(sorted(PAUSES_S))

    def pause(self, w: int, turn: int) -> float:
        lo, hi = (math.log(s) for s in PAUSES_S[self.tool(w, turn)])
        return self.pause_scale * math.exp(self._rng("pause", w, turn).uniform(lo, hi))


async def run_tool_agents(base_url: str, wl: ToolAgentWorkload) -> dict:
    """Every workflow of `wl` against one server; job completion times (wall clock)."""
    jct: list[float] = []
    pinned = [0]
    failures: list[str] = []
    async with client_session(base_url, wl.workflows, 3600) as session:
        async with session.get("/v1/models") as r:
            model = (await r.json())["data"][0]["id"]
        async with session.get("/metrics") as r:
            before = read_metrics(await r.read())

        async def post(body: dict) -> dict | None:
            """The answer, or None with a failure noted (its workflow stops there)."""
            try:
                async with session.post(
                    "/v1/chat/completions", data=orjson.dumps(body), headers=JSON
                ) as r:
                    if r.status != 200:
                        failures.append(f"{r.status} {await r.text()}")
                        return None
                    return await r.json()
            except aiohttp.ClientError as exc:  # fails its own workflow, not the run
                failures.append(f"{type(exc).__name__}: {exc}")
                return None

        async def workflow(w: int) -> None:
            start = time.perf_counter()
            messages = [
                {"role": "system", "content": wl.system},
                {"role": "user", "content": wl.task(w)},
            ]
            for turn in range(wl.turns):
                tool = wl.tool(w, turn)
                body = {
                    "model": model,
                    "messages": messages,
                    "tools": TOOLS,
                    "tool_choice": {"type": "function", "function": {"name": tool}},
                    "max_tokens": wl.answer_tokens,
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
            final = {  # an agent's last answer: its tools still bound, no call wanted
                "model": model,
                "messages": messages,
                "tools": TOOLS,
                "tool_choice": "none",
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
    return {
        **jct_figures(jct),
        "wall_s": wall,
        "device_hit_rate": (d1 - d0) / queries if queries else 0.0,
        "host_hit_rate": (h1 - h0) / queries if queries else 0.0,
        "recomputed_tokens": int(queries - (d1 - d0) - (h1 - h0)),
        "pinned_answers": pinned[0],
        "failures": failures,
    }


def jct_figures(jct: list[float]) -> dict[str, float]:
    """Mean, p50, p90 and max of job completion times (nearest rank)."""
    ordered = sorted(jct)
    if not ordered:
        return {k: float("nan") for k in ("jct_mean_s", "jct_p50_s", "jct_p90_s", "jct_max_s")}

    def rank(q: float) -> float:
        return ordered[max(1, math.ceil(q * len(ordered))) - 1]

    return {
        "jct_mean_s": sum(ordered) / len(ordered),
        "jct_p50_s": rank(0.5),
        "jct_p90_s": rank(0.9),
        "jct_max_s": ordered[-1],
    }
