"""The engine: requests in, one batched step at a time, outputs out."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence as Seq

import torch

from agentrt.engine.batcher import Batcher, ScheduledBatch
from agentrt.engine.clock import Clock, WallClock
from agentrt.engine.compute_thread import on_compute_thread
from agentrt.engine.config import EngineConfig
from agentrt.engine.detokenizer import Detokenizer
from agentrt.engine.errors import PromptTooLongError
from agentrt.engine.isolation import isolate, reason
from agentrt.engine.kv_tiers import kv_tier_options
from agentrt.engine.model import CausalLM
from agentrt.engine.outputs import EngineStats, RequestOutput
from agentrt.engine.request_checks import check_request, check_token_range, token_ids_of
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.sequence import FinishReason, Sequence, SequenceStatus
from agentrt.engine.structured_output import GrammarCache, request_constraints
from agentrt.engine.torch_runner import TorchModelRunner
from agentrt.kvmanager.manager import KVCacheManager

Prompt = str | Seq[int]


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16
    try:
        dtype = getattr(torch, name)
    except AttributeError:
        dtype = None
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return dtype


class LLMEngine:
    """Continuous-batching engine over paged KV with a radix prefix cache.

    `add_request` and `abort` may be called from any thread; `step` runs one batch and
    must be called from one thread at a time. Build it with `LLMEngine.from_config`.

    A request fails only itself: `add_request` refuses bad values with a one-line
    error, and a request that still fails inside a step (its sampling, the model or
    detokenizing) ends with finish reason ``error`` and `RequestOutput.error` set, its KV
    released, while the rest of the batch goes on (`isolation.py`).
    """

    def __init__(
        self,
        config: EngineConfig,
        runner: ModelRunner,
        tokenizer=None,
        eos_token_ids: Seq[int] = (),
        max_model_len: int | None = None,
        vocab_size: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or WallClock()
        self.runner = runner
        self.tokenizer = tokenizer
        self.eos_token_ids = frozenset(eos_token_ids)
        self.vocab_size = vocab_size
        self.kv = KVCacheManager(
            config.num_pages,
            config.page_size,
            config.eviction_policy,
            config.enable_prefix_cache,
            **kv_tier_options(config, runner),
        )
        self.batcher = Batcher(self.kv, config.max_num_batched_tokens, config.max_num_seqs)
        capacity = config.kv_capacity_tokens
        self.max_model_len = min(max_model_len or capacity, capacity)
        self.stats = EngineStats()
        self.requests: dict[str, Sequence] = {}
        self._detok: dict[str, Detokenizer] = {}
        self._inbox: deque[Sequence] = deque()
        self._aborts: deque[str] = deque()
        self._lock = threading.Lock()
        self.grammars = GrammarCache()
        # False: `step` reports only requests that finished (callers that wait for
        # completions, e.g. the co-simulation, skip a snapshot per token).
        self.stream_outputs = True

    @classmethod
    def from_config(cls, config: EngineConfig | None = None, **overrides) -> LLMEngine:
        """Load the model named in the config (default: the embedded SmolLM2-135M), or
        with `backend="sim"` build a cost-model engine (no weights, virtual clock)."""
        config = config or EngineConfig(**overrides)
        if config.backend == "sim":
            from agentrt.engine.cost_model.engine import build_sim_engine

            return build_sim_engine(config)
        return on_compute_thread(cls._build_torch_engine, config)

    @classmethod
    def _build_torch_engine(cls, config: EngineConfig) -> LLMEngine:
        from agentrt.engine import loader

        device = torch.device(config.device)
        dtype = resolve_dtype(config.dtype, device)
        model_dir = loader.resolve_model_dir(config.model)
        hf_config = loader.load_config(model_dir)
        family = loader.model_family(hf_config)
        max_positions = hf_config.max_position_embeddings
        model = CausalLM(hf_config, family, max_positions)
        model.load_hf_weights(loader.load_weights(model_dir, torch.float32, "cpu"))
        model.to(device=device, dtype=dtype)
        model.optimize_for_device()
        if config.batch_invariant:
            model.make_batch_invariant()
        runner = TorchModelRunner(
            model,
            config.num_pages,
            config.page_size,
            device,
            dtype,
            num_host_pages=config.num_host_pages or 0,
            batch_invariant=config.batch_invariant,
        )
        tokenizer = loader.load_tokenizer(model_dir)
        eos = hf_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        return cls(config, runner, tokenizer, eos_ids, max_positions, hf_config.vocab_size)

    # -- requests -------------------------------------------------------------------

    def tokenize(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("this model has no tokenizer: pass prompts as token ids")
            return self.tokenizer.encode(prompt, add_special_tokens=False)
        return token_ids_of(prompt)

    def add_request(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        request_id: str | None = None,
        agent_id: str | None = None,
        prefix_len: int | None = None,
        *,
        ids_checked: bool = False,
    ) -> str:
        """Queue a request; returns its id. Invalid requests raise here and leave the
        engine untouched. `prefix_len`: how many leading tokens are `agent_id`'s fixed
        prefix (tags the cached prefix with the agent for workflow-aware eviction).
        `ids_checked`: the caller guarantees that `prompt` is a list of Python ints in
        [0, vocab_size); it is copied as is, without the per-token conversion and range
        check (the simulator's synthetic prompts)."""
        params = SamplingParams() if params is None else params
        token_ids = list(prompt) if ids_checked else self.tokenize(prompt)
        if not token_ids:
            raise ValueError("empty prompt: a request needs at least one token")
        if len(token_ids) >= self.max_model_len:
            raise PromptTooLongError(
                f"prompt has {len(token_ids)} tokens but this engine serves at most "
                f"{self.max_model_len - 1} prompt tokens (model context / KV capacity "
                f"{self.max_model_len} tokens)"
            )
        vocab = self.vocab_size
        if not ids_checked and vocab is not None:
            check_token_range(token_ids, vocab)
        check_request(params, vocab, len(token_ids), request_id, agent_id, prefix_len)
        seq = Sequence(
            token_ids,
            params,
            agent_id=agent_id,
            prefix_len=prefix_len,
            arrival_time=self.clock.now(),
        )
        if request_id is not None:
            seq.request_id = request_id
        if params.min_tokens or params.structured_output is not None:
            seq.constraints = request_constraints(
                params, self.eos_token_ids, self.grammars, self.tokenizer, self.vocab_size
            )
        if params.logprobs is not None:
            seq.logprobs = []
        with self._lock:
            if seq.request_id in self.requests:
                raise ValueError(f"duplicate request id {seq.request_id!r}")
            self.requests[seq.request_id] = seq
            self._inbox.append(seq)
        return seq.request_id

    def abort(self, request_id: str) -> None:
        """Cancel a request; its KV locks are released at the next step."""
        self._aborts.append(request_id)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    # -- stepping -------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one batch. Returns an output for every request that changed (only for
        those that finished when `stream_outputs` is False)."""
        if self.runner.uses_compute_thread:
            return on_compute_thread(self._step)
        return self._step()

    def _step(self) -> list[RequestOutput]:
        outputs = self._drain_inbox()
        batch = self.batcher.schedule()
        self.stats.preemptions += len(batch.preempted)
        if not batch:
            if self.kv.loads_in_flight:
                self.kv.wait_for_loads(0.05)  # only loads can unblock the waiting requests
            return outputs
        t0 = self.clock.now()
        self.stats.steps += 1
        self.stats.batch_sizes.append(len(batch.items))
        try:
            sampled = self.runner.execute(batch)
        except Exception as exc:  # fail only the requests at fault
            isolated = isolate(self.runner, batch, exc)
            for seq, why in isolated.failed.items():
                outputs.append(self._fail(seq, why))
            batch, sampled = isolated.ran, isolated.tokens
        self.stats.forward_seconds += self.clock.now() - t0
        return outputs + self._apply(batch, sampled)

    def _drain_inbox(self) -> list[RequestOutput]:
        while self._inbox:
            seq = self._inbox.popleft()
            if self.tokenizer is not None:
                self._detok[seq.request_id] = Detokenizer(self.tokenizer, seq.params.stop)
            self.batcher.add(seq)
        outputs = []
        while self._aborts:
            seq = self.requests.get(self._aborts.popleft())
            if seq is not None:
                self._finish(seq, FinishReason.ABORT)
                outputs.append(self._output(seq, []))
        return outputs

    def _apply(self, batch: ScheduledBatch, sampled: list[int]) -> list[RequestOutput]:
        tokens = iter(sampled)
        outputs = []
        stats, kv, stream = self.stats, self.kv, self.stream_outputs
        plain = not self._detok and not self.eos_token_ids  # only max_tokens / length stop
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
            p = seq.params
            if plain and not p.stop_token_ids:  # no text or stop ids to look at
                stop = self._length_stop(total + 1, prompt, p.max_tokens)
            else:
                try:
                    stop = self._check_stop(seq, token)
                except Exception as exc:  # e.g. its tokens break the tokenizer: it alone fails
                    seq.error = reason("detokenizing", exc)
                    stop = FinishReason.ERROR
            if stop is not None:
                self._finish(seq, stop)
            elif not stream:
                continue
            outputs.append(self._output(seq, [token]))
        stats.decode_tokens += decoded
        stats.generated_tokens += generated
        return outputs

    def _check_stop(self, seq: Sequence, token: int) -> FinishReason | None:
        p = seq.params
        detok = self._detok.get(seq.request_id) if self._detok else None
        if detok is not None:
            seq.text = detok.append(token)
            if detok.stopped:
                return FinishReason.STOP
        if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_token_ids):
            return FinishReason.STOP
        return self._length_stop(len(seq.token_ids), len(seq.prompt_token_ids), p.max_tokens)

    def _length_stop(self, num_tokens: int, num_prompt: int, limit: int) -> FinishReason | None:
        if num_tokens - num_prompt >= limit or num_tokens >= self.max_model_len:
            return FinishReason.LENGTH
        return None

    def _finish(self, seq: Sequence, reason: FinishReason) -> None:
        self.batcher.remove(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
        seq.finish_time = self.clock.now()
        self.requests.pop(seq.request_id, None)
        self._detok.pop(seq.request_id, None)
        self.runner.forget(seq.request_id)
        self.stats.finished_requests += 1

    def _fail(self, seq: Sequence, why: str) -> RequestOutput:
        """End ``seq`` with finish reason ``error`` (its KV released) and report it."""
        seq.error = why
        self._finish(seq, FinishReason.ERROR)
        return self._output(seq, [])

    def _output(self, seq: Sequence, new_tokens: list[int]) -> RequestOutput:
        reason = seq.finish_reason
        return RequestOutput(
            request_id=seq.request_id,
            prompt_token_ids=seq.prompt_token_ids,
            token_ids=seq.output_token_ids,
            new_token_ids=new_tokens,
            text=seq.text,
            finished=seq.is_finished,
            finish_reason=reason.value if reason else None,
            error=seq.error,
            num_cached_tokens=seq.num_cached_tokens,
            arrival_time=seq.arrival_time,
            first_token_time=seq.first_token_time,
            finish_time=seq.finish_time,
            logprobs=None if seq.logprobs is None else seq.logprobs[:],
        )

    def reset_prefix_cache(self) -> None:
        """Drop every cached prefix (only between runs: no request may be in flight)."""
        if self.has_unfinished_requests():
            raise RuntimeError("cannot reset the prefix cache while requests are in flight")
        while self.kv.loads_in_flight:  # prefetches may still be copying
            self.kv.wait_for_loads()
        self.kv.tree.reset()

    def check_integrity(self) -> None:
        """Page accounting across the tree, the free list and live sequences."""
        self.kv.check_integrity(self.batcher.running)
