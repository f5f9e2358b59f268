"""The tool-agent workload on the `sim` backend: the ReAct clients in process, on the
engine's virtual clock, with the server's own pin decisions.

Over HTTP a client's round trip and its tool pause pass in wall time while the sim
engine's clock moves only with its steps, so a pause could not be a pause of virtual
time. Here one loop owns the clock, as `agentrt replay` does: a conversation's next
request is due at its answer's finish plus its tool's pause (`ToolAgentWorkload.pause`);
an idle engine jumps to the next due request. The result is deterministic.

Every request goes through an `AgentTracker` as the server's requests do (`Service`):
`started`, then at the answer `measured` (its time to first token per computed prompt
token prices a reload), `finished` with its tool and `pause`, which pins the
conversation (prompt and answer) when the pin rule says so; the next request releases
the pin. The request forces a call of its turn's tool (as the HTTP clients' `tool_choice`
does), so its answer is taken as that call: the cost model's tokens are not text, and
the sim runner enforces no grammar. Prompts are the workload's texts as token ids of
the model's tokenizer, with each answer's tokens appended as generated.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.serve.agents import AgentTracker, Call
from agentrt.serve.bench_tool_agent import ToolAgentWorkload, jct_figures
from agentrt.serve.hints import RequestHints

AGENT = "react"


@dataclass
class ToolAgentTokens:
    """The workload's texts as token ids (`tokenizer.encode`, no special tokens)."""

    workload: ToolAgentWorkload
    tokenizer: object
    system: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.system = self._ids(self.workload.system)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def task(self, w: int) -> list[int]:
        return self._ids(self.workload.task(w))

    def result(self, w: int, turn: int) -> list[int]:
        return self._ids(f"{self.workload.tool(w, turn)}: {self.workload.result(w, turn)}")

    def conversation_tokens(self, w: int) -> int:
        """The prompt of the last request of workflow `w`, roughly (answers included)."""
        turns = range(self.workload.turns)
        results = sum(len(self.result(w, t)) for t in turns)
        return (
            len(self.system)
            + len(self.task(w))
            + results
            + len(turns) * (self.workload.answer_tokens)
        )


@dataclass
class _Flow:
    tokens: list[int]
    turn: int = 0
    call: Call | None = None
    request_id: str | None = None


def run_tool_agents_sim(
    engine: LLMEngine, texts: ToolAgentTokens, pin_budget: float, pin_rule: str = "cost"
) -> dict:
    """Every workflow of the workload on `engine` (sim, no requests in it) from virtual
    time 0; job completion times and the KV figures of the run."""
    wl, kv, clock = texts.workload, engine.kv, engine.clock
    tracker = AgentTracker(
        kv.update_hints,
        kv.page_size,
        pin=engine.pin,
        unpin=engine.unpin,
        pin_budget_pages=int(kv.num_pages * pin_budget),
        engine_clock=clock.now,
        clock=clock.now,
        pool_pages=kv.num_pages,
        pin_rule=pin_rule,
        pins_shed=kv.pins.drain_shed,
    )
    engine.stream_outputs = False  # finished requests only
    start = clock.now()
    stats0 = kv.stats.snapshot()
    shed0 = kv.pins.shed_count
    flows = {w: _Flow(texts.system + texts.task(w)) for w in range(wl.workflows)}
    due: list[tuple[float, int]] = [(start, w) for w in flows]  # (virtual time, workflow)
    by_request: dict[str, int] = {}
    jct: dict[int, float] = {}
    pinned = 0

    def submit(w: int) -> None:
        flow = flows[w]
        last = flow.turn == wl.turns
        hints = RequestHints(workflow_id=f"wf-{w}", agent_id=AGENT, is_last_step=last)
        flow.call = tracker.call_of(hints, texts.system)
        tracker.started(flow.call)
        params = SamplingParams(max_tokens=16 if last else wl.answer_tokens, ignore_eos=True)
        flow.request_id = engine.add_request(
            flow.tokens,
            params,
            agent_id=AGENT,
            prefix_len=len(texts.system),
            program_start=tracker.program_start(flow.call),  # as the server's requests
            pin_key=flow.call.conversation,  # (they take their pins over)
            ids_checked=True,
        )
        by_request[flow.request_id] = w

    while due or engine.has_unfinished_requests():
        while due and due[0][0] <= clock.now():
            submit(heapq.heappop(due)[1])
        if not engine.has_unfinished_requests():
            clock.advance_to(due[0][0])
            continue
        for out in engine.step():
            if not out.finished:
                continue
            if out.error is not None:
                raise RuntimeError(f"request {out.request_id} failed: {out.error}")
            w = by_request.pop(out.request_id)
            flow, now = flows[w], clock.now()
            missed = len(out.prompt_token_ids) - out.num_device_cached_tokens
            tracker.measured(out.first_token_time - out.arrival_time, missed)
            if flow.turn == wl.turns:
                tracker.finished(flow.call)
                jct[w] = now - start
                continue
            tool = wl.tool(w, flow.turn)
            tracker.finished(flow.call, [tool])
            answer = [*out.prompt_token_ids, *out.token_ids]
            pinned += tracker.pause(flow.call, [tool], answer) is not None
            flow.tokens = answer + texts.result(w, flow.turn)
            heapq.heappush(due, (now + wl.pause(w, flow.turn), w))
            flow.turn += 1
    stats = kv.stats - stats0
    return {
        **jct_figures(list(jct.values())),
        "jct_s": [jct[w] for w in sorted(jct)],
        "makespan_s": clock.now() - start,
        "device_hit_rate": stats.device_hit_rate,
        "host_hit_rate": stats.host_hit_rate,
        "recomputed_tokens": stats.recomputed_tokens,
        "host_loaded_tokens": stats.host_hit_tokens,
        "prompt_tokens": stats.prompt_tokens,
        "pinned_answers": pinned,
        "pins_shed": kv.pins.shed_count - shed0,
        "host_load_s_per_token": kv.host_load_s_per_token(),
        "failures": [] if len(jct) == wl.workflows else [f"{wl.workflows - len(jct)} unfinished"],
    }
