"""Replaying a trace on an engine (built-in or simulated) under one KV policy.

Calls go to the engine in the order they become eligible (`EligibleCalls`) while fewer
than `max_waiting` wait there; the rest wait, in order and with their arrival times, in
the replay's own queue (the engine admits in order anyway: this only bounds memory). The
engine's clock (wall for `builtin`, virtual for `sim`) decides when a call is due; an idle
engine waits on its clock for the next eligible call (`Clock.advance_to`).

Every record ends completed or failed; a failed one carries its reason (a prompt longer
than the engine serves, a request the engine refuses or aborts).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from agentrt.engine.sampling_params import SamplingParams
from agentrt.trace.eligible import EligibleCalls
from agentrt.trace.learned_hints import LearnedReplayHints
from agentrt.trace.metrics import RequestTiming, serving_metrics
from agentrt.trace.replay_options import ReplayOptions
from agentrt.trace.schema import CallRecord
from agentrt.trace.timeline import Timeline
from agentrt.trace.tokens import prompt_tokens, scaled_len

if TYPE_CHECKING:  # the engines import torch; options and flags must not need it
    from agentrt.engine.llm_engine import LLMEngine
    from agentrt.engine.outputs import RequestOutput


class Replayer:
    """One replay of `records` on `engine` (which must have no requests): `run()` once
    returns the serving metrics plus engine stats.

    `timeline` gets a span per engine step, per KV load and per call. Where the runner can,
    decoders advance implicitly (`LLMEngine.implicit_decodes`) and tokens are credited by
    `_read_tokens`."""

    def __init__(
        self,
        engine: LLMEngine,
        records: Sequence[CallRecord],
        options: ReplayOptions,
        timeline: Timeline | None = None,
        hints: LearnedReplayHints | None = None,
    ) -> None:
        self.engine = engine
        self.options = options
        self.timeline = timeline
        self.hints = hints  # learned steps-to-execution for the KV manager
        self.records = {r.call_id: r for r in records}
        self.eligible = EligibleCalls(records, options.dispatch, options.speed)
        self.backlog: deque[tuple[float, str]] = deque()  # arrived, not yet in the engine
        self.timings: dict[str, RequestTiming] = {}
        self.request_to_call: dict[str, str] = {}
        self.wanted: dict[str, int] = {}  # output tokens asked for
        self.prompt_lens: dict[str, int] = {}
        self.cached: dict[str, int] = {}
        self.truncated = 0  # finished (at the context limit) before their output length
        self.loaded_pages = engine.kv.stats.loaded_pages
        self.max_prompt = engine.max_model_len - 1
        self.fast = options.fast_forward and engine.runner.supports_implicit_decodes
        self.start = engine.clock.now()
        bar_at = {"desc": options.label, "position": options.position}
        self.bar = tqdm(total=len(records), disable=not options.progress, **bar_at)

    def run(self) -> dict:
        """Replay every record to its end; returns `_result`. Restores the engine's output
        mode."""
        engine, clock = self.engine, self.engine.clock
        stream = engine.stream_outputs
        if self.fast:
            engine.implicit_decodes = True
            engine.runner.decode_group.record_leavers(True)
        else:
            engine.stream_outputs = True
        while self.eligible or self.backlog or engine.has_unfinished_requests():
            self._dispatch(clock.now())
            if not engine.has_unfinished_requests():
                if self.eligible:
                    clock.advance_to(self.start + self.eligible.next_due())
                continue
            outputs, now = self._step()
            if self.fast:  # no per-token snapshots
                self._read_tokens(now)
            for out in outputs:
                self._complete(out, now)
        self.bar.close()
        if self.fast:
            engine.runner.decode_group.record_leavers(False)
            engine.implicit_decodes = False
        engine.stream_outputs = stream
        return self._result()

    def _engine_waiting(self) -> int:
        return len(self.engine.requests) - len(self.engine.batcher.running)

    def _dispatch(self, now: float) -> None:
        """Queue the calls eligible by `now` (arrived at their eligible time, even mid-step),
        then hand the queue's head to the engine while fewer than `max_waiting` wait there."""
        for due, call_id in self.eligible.take_due(now - self.start):
            self.backlog.append((self.start + due, call_id))
        while self.backlog and self._engine_waiting() < self.options.max_waiting:
            arrival, call_id = self.backlog.popleft()
            self._submit(call_id, arrival)

    def _submit(self, call_id: str, arrival: float) -> None:
        """Add the call's request to the engine, or fail the call with the reason."""
        r, scale = self.records[call_id], self.options.scale_tokens
        params = SamplingParams(
            max_tokens=scaled_len(r.output_len, scale) if r.output_len else 1, ignore_eos=True
        )
        self.wanted[call_id] = params.max_tokens
        recorded = r.prompt_token_ids is not None  # recorded ids are replayed unscaled
        self.prompt_lens[call_id] = r.prompt_len if recorded else scaled_len(r.prompt_len, scale)
        if self.prompt_lens[call_id] > self.max_prompt:  # checked before its tokens are made
            why = (
                f"prompt longer than the engine serves (at most {self.max_prompt:,} prompt "
                f"tokens: model context / KV capacity {self.engine.max_model_len:,} tokens)"
            )
            self._fail(call_id, arrival, why)
            return
        tokens = prompt_tokens(r, self.engine.vocab_size or 32_000, scale)
        prefix_len = r.prefix_len
        if prefix_len and not recorded:
            prefix_len = min(len(tokens), scaled_len(prefix_len, scale))
        try:
            rid = self.engine.add_request(
                tokens, params, agent_id=r.agent_id, prefix_len=prefix_len or None
            )
        except ValueError as exc:  # e.g. token ids outside the model's vocabulary
            self._fail(call_id, arrival, str(exc))
            return
        self.request_to_call[rid] = call_id
        self.timings[call_id] = RequestTiming(arrival=arrival)
        if self.hints is not None:
            self.engine.kv.update_hints(self.hints.started(r, arrival - self.start))

    def _fail(self, call_id: str, arrival: float, reason: str) -> None:
        self.timings[call_id] = RequestTiming(arrival=arrival, failed=True, reason=reason)
        self._finish(call_id, arrival)

    def _finish(self, call_id: str, now: float) -> None:
        """The call ended (completed or failed) at `now`: its children may become eligible."""
        self.bar.update(1)
        self.eligible.finished(call_id, now - self.start)

    def _step(self) -> tuple[list[RequestOutput], float]:
        """One engine step, or (fast) a stretch of pure-decode steps that ends before the
        next eligible call could be handed over; returns its outputs and the time after."""
        engine, clock = self.engine, self.engine.clock
        step_start = clock.now()
        stretch = 0
        outputs: list[RequestOutput] = []
        if self.fast:
            room = bool(self.eligible) and self._engine_waiting() < self.options.max_waiting
            until = self.eligible.next_due() if room else math.inf
            stretch = engine.fast_forward(until, outputs, self.start)
        if not stretch:
            outputs = engine.step()
        now = clock.now()
        if self.timeline is not None:
            self._trace_steps(step_start, now, stretch, len(outputs))
        return outputs, now

    def _trace_steps(self, step_start: float, now: float, stretch: int, finished: int) -> None:
        """Timeline spans of the step(s) just run (`stretch` > 0: that many fast-forwarded
        ones, `finished` requests leaving at the last) and of the KV pages loaded in one."""
        timeline, start, engine = self.timeline, self.start, self.engine
        assert timeline is not None
        if stretch:
            for i, end in enumerate(engine.runner.decode_group.last_step_ends(stretch)):
                running = len(engine.batcher.running) + (finished if i < stretch - 1 else 0)
                timeline.span(
                    "engine steps", "step", step_start - start, end - start, requests=running
                )
                step_start = end
            return
        running = len(engine.batcher.running)
        timeline.span("engine steps", "step", step_start - start, now - start, requests=running)
        loaded = engine.kv.stats.loaded_pages
        if loaded != self.loaded_pages:
            pages, self.loaded_pages = loaded - self.loaded_pages, loaded
            timeline.span("kv loads", "host->device", step_start - start, now - start, pages=pages)

    def _credit(self, call_id: str | None, times: list[float]) -> None:
        if call_id is not None and times:
            timing = self.timings[call_id]
            timing.token_times.extend(times)
            timing.output_tokens += len(times)

    def _read_tokens(self, now: float) -> None:
        """(fast) Credit the tokens decoded since the last call: a request that left the
        decode group got one at the end of each step it ran in as a member; the other
        running requests got their new ones `now`."""
        group = self.engine.runner.decode_group
        for rid, times in group.take_leavers():
            self._credit(self.request_to_call.get(rid), times)
        for seq in self.engine.batcher.running:
            if group.decoded_as_member(seq):
                continue  # credited when it leaves the group
            call_id = self.request_to_call.get(seq.request_id)
            if call_id is not None:
                timing = self.timings[call_id]
                new = len(seq.token_ids) - len(seq.prompt_token_ids) - timing.output_tokens
                self._credit(call_id, [now] * new)

    def _complete(self, out: RequestOutput, now: float) -> None:
        """Credit an output's new tokens at `now`; if it finished, end its call."""
        call_id = self.request_to_call.get(out.request_id)
        if call_id is None:
            return
        timing = self.timings[call_id]
        # fast: a finished request's tokens not yet credited (its last one, if any)
        new = len(out.token_ids) - timing.output_tokens if self.fast else len(out.new_token_ids)
        self._credit(call_id, [now] * new)
        if not out.finished:
            return
        if out.finish_reason in ("abort", "error"):
            timing.failed = True
            timing.reason = f"{out.finish_reason}: {out.error}" if out.error else out.finish_reason
        elif timing.output_tokens < self.wanted[call_id]:
            self.truncated += 1
        self.cached[call_id] = out.num_cached_tokens
        if self.hints is not None:
            record = self.records[call_id]
            self.engine.kv.update_hints(self.hints.finished(record, now - self.start))
        self._finish(call_id, now)
        if self.timeline is not None:
            self.timeline.span(
                self.records[call_id].agent_id,
                call_id,
                timing.arrival - self.start,
                now - self.start,
                prompt=len(out.prompt_token_ids),
                output=timing.output_tokens,
                cached=out.num_cached_tokens,
            )

    def _result(self) -> dict:
        """`serving_metrics` (with `failures` by reason) + `truncated`, hit rates,
        `recomputed_tokens`, `kv` and `engine` stats, and (`per_call`) `calls`."""
        start, kv = self.start, self.engine.kv.stats
        result = serving_metrics(list(self.timings.values()), self.engine.clock.now() - start)
        result["truncated"] = self.truncated
        result["device_hit_rate"] = kv.device_hit_rate
        result["host_hit_rate"] = kv.host_hit_rate
        result["recomputed_tokens"] = kv.recomputed_tokens
        result["kv"] = kv.as_dict()
        result["engine"] = self.engine.stats.as_dict()
        if self.options.per_call:
            result["calls"] = {
                call_id: {
                    "arrival_s": t.arrival - start,
                    "finish_s": t.token_times[-1] - start if t.token_times else None,
                    "prompt_tokens": self.prompt_lens[call_id],
                    "output_tokens": t.output_tokens,
                    "cached_tokens": self.cached.get(call_id, 0),
                    "failed": t.failed,
                    "ttft_s": t.ttft if t.token_times else None,
                    "e2e_s": t.e2e if t.token_times else None,
                }
                for call_id, t in self.timings.items()
            }
        return result
