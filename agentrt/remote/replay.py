"""`agentrt replay --backend openai`: a trace's calls sent to a running server.

The same dispatch as an engine replay (`trace.eligible`: timestamps, or dependencies with
think times, divided by `speed`), the same synthetic prompts (`trace.tokens`), each call
one streamed request through `OpenAIBackend` at its eligible time on the wall clock. Times
are the client's: a token time per streamed chunk (a server may put several tokens in one
chunk, so ITL is per chunk), the output length from the answer's tokens. The prefix hit
rate is the servers' `cached_tokens` over the prompt tokens sent. The eviction policy is
the server's own; the result is labelled `server`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio

from agentrt.engine.call_info import CallInfo
from agentrt.engine.sampling_params import SamplingParams
from agentrt.remote.openai_backend import OpenAIBackend
from agentrt.trace.eligible import EligibleCalls
from agentrt.trace.metrics import RequestTiming, serving_metrics
from agentrt.trace.replay_options import ReplayOptions
from agentrt.trace.schema import CallRecord
from agentrt.trace.tokens import prompt_tokens, scaled_len


class RemoteReplayer:
    def __init__(
        self,
        backend: OpenAIBackend,
        records: Sequence[CallRecord],
        options: ReplayOptions,
        vocab_size: int,
    ) -> None:
        self.backend = backend
        self.options = options
        self.vocab_size = vocab_size
        self.records = {r.call_id: r for r in records}
        self.eligible = EligibleCalls(records, options.dispatch, options.speed)
        self.timings: dict[str, RequestTiming] = {}
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self._changed = anyio.Event()
        self._in_flight = 0

    async def run(self) -> dict:
        start = time.perf_counter()
        self.start = start
        async with anyio.create_task_group() as tg:
            while self.eligible or self._in_flight:
                for due, call_id in self.eligible.take_due(time.perf_counter() - start):
                    self._in_flight += 1
                    tg.start_soon(self._call, call_id, start + due)
                wait = float("inf")
                if self.eligible:
                    wait = self.eligible.next_due() - (time.perf_counter() - start)
                if wait > 0:
                    with anyio.move_on_after(wait):
                        await self._changed.wait()
                    self._changed = anyio.Event()
        result = serving_metrics(list(self.timings.values()), time.perf_counter() - start)
        sent = self.prompt_tokens
        result["device_hit_rate"] = self.cached_tokens / sent if sent else 0.0
        result["host_hit_rate"] = 0.0  # a server reports one cached count
        result["server_kind"] = self.backend.kind
        return result

    async def _call(self, call_id: str, arrival: float) -> None:
        r, scale = self.records[call_id], self.options.scale_tokens
        tokens = prompt_tokens(r, self.vocab_size, scale)
        max_tokens = scaled_len(r.output_len, scale) if r.output_len else 1
        params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
        prefix_len = r.prefix_len
        if prefix_len and r.prompt_token_ids is None:
            prefix_len = min(len(tokens), scaled_len(prefix_len, scale))
        call = CallInfo(r.agent_id, prefix_len or None, r.workflow_id, r.call_id, tuple(r.parents))
        timing = self.timings[call_id] = RequestTiming(arrival=arrival)
        shown = 0
        last = None
        try:
            async for out in self.backend.generate(tokens, params, call):
                last = out
                if len(out.text) > shown:
                    shown = len(out.text)
                    timing.token_times.append(time.perf_counter())
            assert last is not None
            if last.finish_reason == "error":
                timing.failed, timing.reason = True, last.error
            else:
                timing.output_tokens = len(last.token_ids)
                self.prompt_tokens += len(tokens)
                self.cached_tokens += min(last.num_cached_tokens, len(tokens))
        finally:
            self._in_flight -= 1
            self.eligible.finished(call_id, time.perf_counter() - self.start)
            self._changed.set()
