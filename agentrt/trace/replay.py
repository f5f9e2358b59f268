"""Replaying a trace on an engine (built-in or simulated) under one KV policy.

Dispatch modes:
- `timestamp`: a call is submitted at its recorded arrival time (divided by `speed`);
- `dependency`: a call with parents is submitted when its last parent finishes, plus its
  recorded think time (divided by `speed`), so a slower system does not squeeze the
  think time out; calls without parents keep their arrival time.

Both come down to an *eligible time* per call, kept in a heap. Arrived calls are handed
to the engine in arrival order while fewer than `max_waiting` wait there; the rest wait,
in the same order and with their arrival times kept, in the replay's own queue. The
engine admits strictly in order from the head of its queue, so this only bounds memory
(an overloaded replay of a long trace would otherwise hold every prompt at once).
The engine's own clock (wall time for `builtin`, virtual time for `sim`) decides when a
call is due; an idle simulated engine jumps its clock to the next eligible call.

Every record ends completed or failed; a failed one carries its reason (a prompt longer
than the engine serves, checked before its tokens are made; a request the engine refuses
or aborts). Parents not among `records` are not waited for: `load_trace` has already
skipped or rejected such calls for `agentrt replay`.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from agentrt.engine.sampling_params import SamplingParams
from agentrt.trace.metrics import RequestTiming, serving_metrics
from agentrt.trace.schema import CallRecord
from agentrt.trace.timeline import Timeline
from agentrt.trace.tokens import prompt_tokens, scaled_len

if TYPE_CHECKING:  # the engines import torch; options and flags must not need it
    from agentrt.engine.llm_engine import LLMEngine

DISPATCH_MODES = ("timestamp", "dependency")


@dataclass
class ReplayOptions:
    dispatch: str = "timestamp"
    speed: float = 1.0
    scale_tokens: float = 1.0
    progress: bool = True
    per_call: bool = False  # also return {call_id: prompt/output/cached tokens, times}
    label: str = "replay"  # the progress bar's description
    position: int = 0  # the progress bar's line (several replays side by side)
    max_waiting: int = 256  # requests queued in the engine at once; later ones queue here
    fast_forward: bool = True  # sim engines: pure-decode stretches in one call (same results)

    def __post_init__(self) -> None:
        if self.dispatch not in DISPATCH_MODES:
            raise ValueError(f"unknown dispatch {self.dispatch!r}; use one of {DISPATCH_MODES}")
        for name, value in (("speed", self.speed), ("scale_tokens", self.scale_tokens)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.max_waiting < 1:
            raise ValueError(f"max_waiting must be >= 1, got {self.max_waiting!r}")


def replay(
    engine: LLMEngine,
    records: Sequence[CallRecord],
    options: ReplayOptions,
    on_step: Callable[[LLMEngine], None] | None = None,
    timeline: Timeline | None = None,
) -> dict:
    """Run every record through `engine`; returns serving metrics plus engine stats."""
    clock = engine.clock
    vocab = engine.vocab_size or 32_000
    by_id = {r.call_id: r for r in records}
    children: dict[str, list[str]] = {}
    waiting_on: dict[str, int] = {}
    heap: list[tuple[float, int, str]] = []
    first_arrival = min((r.arrival_s for r in records), default=0.0)
    for order, r in enumerate(records):
        parents = [p for p in r.parents if p in by_id] if options.dispatch == "dependency" else []
        waiting_on[r.call_id] = len(parents)
        for p in parents:
            children.setdefault(p, []).append(r.call_id)
        if not parents:
            due = (r.arrival_s - first_arrival) / options.speed
            heapq.heappush(heap, (due, order, r.call_id))
    order_of = {r.call_id: i for i, r in enumerate(records)}
    backlog: deque[tuple[float, str]] = deque()  # arrived, not yet handed to the engine
    timings: dict[str, RequestTiming] = {}
    request_to_call: dict[str, str] = {}
    start = clock.now()
    bar = tqdm(
        total=len(records),
        desc=options.label,
        position=options.position,
        disable=not options.progress,
    )
    cached: dict[str, int] = {}
    prompt_lens: dict[str, int] = {}
    loaded_pages = engine.kv.stats.loaded_pages
    truncated = 0  # finished (at the context limit) before their output length

    max_prompt = engine.max_model_len - 1
    too_long = (
        f"prompt longer than the engine serves (at most {max_prompt:,} prompt tokens: "
        f"model context / KV capacity {engine.max_model_len:,} tokens)"
    )
    wanted: dict[str, int] = {}  # output tokens asked for

    def fail(call_id: str, due: float, reason: str) -> None:
        timings[call_id] = RequestTiming(arrival=due, failed=True, reason=reason)
        finish(call_id, due)

    def submit(call_id: str, due: float) -> None:
        r = by_id[call_id]
        params = SamplingParams(
            max_tokens=scaled_len(r.output_len, options.scale_tokens) if r.output_len else 1,
            ignore_eos=True,
        )
        wanted[call_id] = params.max_tokens
        if r.prompt_token_ids is not None:
            prompt_lens[call_id] = len(r.prompt_token_ids)
        else:
            prompt_lens[call_id] = scaled_len(r.prompt_len, options.scale_tokens)
        if prompt_lens[call_id] > max_prompt:  # checked before its tokens are made
            fail(call_id, due, too_long)
            return
        tokens = prompt_tokens(r, vocab, options.scale_tokens)
        prefix_len = r.prefix_len
        if prefix_len and r.prompt_token_ids is None:
            prefix_len = min(len(tokens), scaled_len(prefix_len, options.scale_tokens))
        try:
            rid = engine.add_request(
                tokens, params, agent_id=r.agent_id, prefix_len=prefix_len or None
            )
        except ValueError as exc:  # e.g. token ids outside the model's vocabulary
            fail(call_id, due, str(exc))
            return
        request_to_call[rid] = call_id
        timings[call_id] = RequestTiming(arrival=due)

    def finish(call_id: str, now: float) -> None:
        bar.update(1)
        for child in children.get(call_id, ()):
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                due = now - start + by_id[child].think_time_s / options.speed
                heapq.heappush(heap, (due, order_of[child], child))

    def engine_waiting() -> int:
        return len(engine.requests) - len(engine.batcher.running)

    # Where the runner can, decoders advance implicitly (`LLMEngine.implicit_decodes`):
    # steps report only finished requests, pure-decode stretches run in one call, and the
    # tokens are credited from the running sequences and the group's record of leavers.
    fast = options.fast_forward and engine.runner.supports_implicit_decodes and on_step is None
    stream = engine.stream_outputs
    group = None
    if fast:
        engine.implicit_decodes = True
        group = engine.decode_group
        assert group is not None
        group.record_leavers(True)
    else:
        engine.stream_outputs = True

    def credit(call_id: str | None, times: list[float]) -> None:
        if call_id is not None and times:
            timing = timings[call_id]
            timing.token_times.extend(times)
            timing.output_tokens += len(times)

    def read_tokens(now: float) -> None:
        """Credit the tokens decoded since the last call: each member that left the group
        got one at the end of every step it ran in as a member; the other running
        requests (and members that joined in the last step) got their new ones `now`."""
        for rid, times in group.take_leavers():
            credit(request_to_call.get(rid), times)
        for seq in engine.batcher.running:
            if group.decoded_as_member(seq):
                continue  # credited when it leaves the group
            call_id = request_to_call.get(seq.request_id)
            if call_id is not None:
                timing = timings[call_id]
                new = len(seq.token_ids) - len(seq.prompt_token_ids) - timing.output_tokens
                credit(call_id, [now] * new)

    while heap or backlog or engine.has_unfinished_requests():
        now = clock.now()
        while heap and heap[0][0] <= now - start:
            due, _, call_id = heapq.heappop(heap)
            backlog.append((start + due, call_id))  # arrived at `due`, even mid-step
        while backlog and engine_waiting() < options.max_waiting:
            submit(backlog[0][1], backlog.popleft()[0])
        if not engine.has_unfinished_requests():
            if heap:
                _wait_until(clock, start + heap[0][0])
            continue
        step_start = clock.now()
        stretch = 0
        if fast:
            waiting_ok = heap and engine_waiting() < options.max_waiting
            outputs = []
            until = heap[0][0] if waiting_ok else math.inf
            stretch = engine.fast_forward(until, outputs, start)
        if not stretch:
            outputs = engine.step()
        now = clock.now()
        if timeline is not None and stretch:
            for i, end in enumerate(group.last_step_ends(stretch)):
                running = len(engine.batcher.running) + (len(outputs) if i < stretch - 1 else 0)
                timeline.span(
                    "engine steps", "step", step_start - start, end - start, requests=running
                )
                step_start = end
        elif timeline is not None:
            timeline.span(
                "engine steps",
                "step",
                step_start - start,
                now - start,
                requests=len(engine.batcher.running),
            )
            if engine.kv.stats.loaded_pages != loaded_pages:
                pages = engine.kv.stats.loaded_pages - loaded_pages
                loaded_pages = engine.kv.stats.loaded_pages
                timeline.span(
                    "kv loads", "host->device", step_start - start, now - start, pages=pages
                )
        if fast:  # no per-token snapshots
            read_tokens(now)
        for out in outputs:
            call_id = request_to_call.get(out.request_id)
            if call_id is None:
                continue
            timing = timings[call_id]
            # fast: a finished request's tokens not yet credited (its last one, if any)
            new = len(out.token_ids) - timing.output_tokens if fast else len(out.new_token_ids)
            credit(call_id, [now] * new)
            if out.finished:
                if out.finish_reason in ("abort", "error"):
                    timing.failed = True
                    timing.reason = (
                        f"{out.finish_reason}: {out.error}" if out.error else out.finish_reason
                    )
                elif timing.output_tokens < wanted[call_id]:
                    truncated += 1
                cached[call_id] = out.num_cached_tokens
                finish(call_id, now)
                if timeline is not None:
                    record = by_id[call_id]
                    timeline.span(
                        record.agent_id,
                        call_id,
                        timing.arrival - start,
                        now - start,
                        prompt=len(out.prompt_token_ids),
                        output=timing.output_tokens,
                        cached=out.num_cached_tokens,
                    )
        if on_step is not None:
            on_step(engine)
    bar.close()
    if fast:
        group.record_leavers(False)
        engine.implicit_decodes = False
    engine.stream_outputs = stream
    result = serving_metrics(list(timings.values()), clock.now() - start)
    result["truncated"] = truncated
    kv = engine.kv.stats
    result["device_hit_rate"] = kv.device_hit_rate
    result["host_hit_rate"] = kv.host_hit_rate
    result["recomputed_tokens"] = kv.recomputed_tokens
    result["kv"] = kv.as_dict()
    result["engine"] = engine.stats.as_dict()
    if options.per_call:
        result["calls"] = {
            call_id: {
                "arrival_s": t.arrival - start,
                "finish_s": t.token_times[-1] - start if t.token_times else None,
                "prompt_tokens": prompt_lens[call_id],
                "output_tokens": t.output_tokens,
                "cached_tokens": cached.get(call_id, 0),
                "failed": t.failed,
                "ttft_s": t.ttft if t.token_times else None,
                "e2e_s": t.e2e if t.token_times else None,
            }
            for call_id, t in timings.items()
        }
    return result


def _wait_until(clock, when: float) -> None:
    advance_to = getattr(clock, "advance_to", None)
    if advance_to is not None:
        advance_to(when)
    else:
        time.sleep(max(0.0, when - clock.now()))
