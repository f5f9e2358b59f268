"""After a step: sampled tokens into the sequences, stop checks, finishing, outputs.

`Postprocessor` is the one owner of a request's end: `finish` is the only place where a
finished or aborted request leaves the group of implicit decoders, has its computed
prefix cached and its KV released, and leaves the engine's tables.
"""

from __future__ import annotations

from agentrt.engine.batcher import Batcher, ScheduledBatch
from agentrt.engine.clock import Clock
from agentrt.engine.detokenizer import Detokenizer
from agentrt.engine.isolation import reason
from agentrt.engine.outputs import EngineStats, RequestOutput
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sequence import FinishReason, Sequence, SequenceStatus


class Postprocessor:
    """Applies a step's results to the engine's sequences (shares the engine's tables:
    ``requests`` by id and ``detok``, the detokenizers of requests that have one)."""

    def __init__(
        self,
        batcher: Batcher,
        runner: ModelRunner,
        clock: Clock,
        stats: EngineStats,
        requests: dict[str, Sequence],
        detok: dict[str, Detokenizer],
        eos_token_ids: frozenset[int],
        max_model_len: int,
    ) -> None:
        self.batcher = batcher
        self.kv = batcher.kv
        self.runner = runner
        self.clock = clock
        self.stats = stats
        self.requests = requests
        self.detok = detok
        self.eos_token_ids = eos_token_ids
        self.max_model_len = max_model_len

    def apply(self, batch: ScheduledBatch, sampled: list[int], stream: bool) -> list[RequestOutput]:
        """Advance the sequences of ``batch`` that ran, append the ``sampled`` tokens
        (one per item that reached its last token), finish those that stop. Returns an
        output per sequence that got a token (``stream``) or finished."""
        tokens = iter(sampled)
        outputs = []
        stats, kv = self.stats, self.kv
        decoded = generated = 0  # counted here, added to the stats once
        for item in batch.items:
            seq = item.seq
            n = item.num_new_tokens
            done = seq.num_computed_tokens
            total = len(seq.token_ids)
            prompt = len(seq.prompt_token_ids)
            if seq.num_cached_tokens and done == seq.num_cached_tokens:
                stats.prefill_tokens_reused += seq.num_cached_tokens
            if total - done > 1 or total == prompt:
                stats.prefill_tokens_computed += n
            else:
                decoded += 1
            seq.num_computed_tokens = done + n
            if n > 1:
                kv.cache(seq)  # a computed prefill chunk is reusable by others right away
            if done + n != total:
                continue  # a prefill chunk that does not reach the last token
            token = next(tokens)
            seq.token_ids.append(token)
            generated += 1
            if seq.first_token_time is None:
                seq.first_token_time = self.clock.now()
                stats.prompt_tokens += prompt
            try:
                stop = self.check_stop(seq, token)
            except Exception as exc:  # e.g. its tokens break the tokenizer: it alone fails
                seq.error = reason("detokenizing", exc)
                stop = FinishReason.ERROR
            if stop is not None:
                self.finish(seq, stop)
            elif not stream:
                continue
            outputs.append(self.output(seq, [token]))
        stats.decode_tokens += decoded
        stats.generated_tokens += generated
        return outputs

    def check_stop(self, seq: Sequence, token: int) -> FinishReason | None:
        """Why ``seq`` stops after its new last token ``token`` (None: it goes on)."""
        p = seq.params
        detok = self.detok.get(seq.request_id) if self.detok else None
        if detok is not None:
            seq.text = detok.append(token)
            if detok.stopped:
                return FinishReason.STOP
        if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_token_ids):
            return FinishReason.STOP
        total = len(seq.token_ids)
        if total - len(seq.prompt_token_ids) >= p.max_tokens or total >= self.max_model_len:
            return FinishReason.LENGTH
        return None

    def finish(self, seq: Sequence, why: FinishReason) -> None:
        """End ``seq``: out of the group, its prefix cached and KV released, untracked."""
        group = self.runner.decode_group
        if group is not None and seq in group:
            group.leave(seq)  # its tokens catch up first
        self.batcher.remove(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = why
        seq.finish_time = self.clock.now()
        self.requests.pop(seq.request_id, None)
        self.detok.pop(seq.request_id, None)
        self.runner.forget(seq.request_id)
        self.stats.finished_requests += 1

    def fail(self, seq: Sequence, why: str) -> RequestOutput:
        """End ``seq`` with finish reason ``error`` (its KV released) and report it."""
        seq.error = why
        self.finish(seq, FinishReason.ERROR)
        return self.output(seq, [])

    def finish_members(self, seqs: list[Sequence]) -> list[RequestOutput]:
        """Finish implicit decoders at their length limit (`apply`'s check), in order."""
        outputs = []
        for seq in seqs:
            self.finish(seq, FinishReason.LENGTH)
            outputs.append(self.output(seq, seq.token_ids[-1:]))
        return outputs

    @staticmethod
    def output(seq: Sequence, new_tokens: list[int]) -> RequestOutput:
        why = seq.finish_reason
        return RequestOutput(
            request_id=seq.request_id,
            prompt_token_ids=seq.prompt_token_ids,
            token_ids=seq.output_token_ids,
            new_token_ids=new_tokens,
            text=seq.text,
            finished=seq.is_finished,
            finish_reason=why.value if why else None,
            error=seq.error,
            num_cached_tokens=seq.num_cached_tokens,
            num_device_cached_tokens=seq.num_device_cached_tokens,
            arrival_time=seq.arrival_time,
            first_token_time=seq.first_token_time,
            finish_time=seq.finish_time,
            logprobs=None if seq.logprobs is None else seq.logprobs[:],
        )
