"""The engine: requests in, one batched step at a time, outputs out. Torch-free: the
model runner (torch or cost model) is the only part that differs between backends."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from collections.abc import Sequence as Seq
from typing import Any

from agentrt.engine.batcher import Batcher
from agentrt.engine.clock import Clock, WallClock
from agentrt.engine.compute_thread import on_compute_thread
from agentrt.engine.config import EngineConfig
from agentrt.engine.detokenizer import Detokenizer
from agentrt.engine.implicit_decodes import ImplicitDecodes
from agentrt.engine.isolation import isolate
from agentrt.engine.outputs import EngineStats, RequestOutput
from agentrt.engine.postprocess import Postprocessor
from agentrt.engine.request_checks import check_prompt, check_request, token_ids_of
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.sequence import FinishReason, Sequence
from agentrt.kvmanager.manager import KVCacheManager

Prompt = str | Seq[int]


class LLMEngine:
    """Continuous-batching engine over paged KV with a radix prefix cache; build it with
    `LLMEngine.from_config`. `add_request`, `abort`, `pin` and `unpin` may be called from
    any thread; `step` from one thread at a time. A request fails only itself: a bad one
    is refused by `add_request` with a one-line error; one that fails inside a step ends
    with finish reason ``error`` (`RequestOutput.error`), its KV released (`isolation.py`).
    With `implicit_decodes` on (the cost model), steady decoders advance by counting
    steps in the runner's `decode_group`, with the plain step's results."""

    def __init__(
        self,
        config: EngineConfig,
        runner: ModelRunner,
        tokenizer=None,
        eos_token_ids: Seq[int] = (),
        max_model_len: int | None = None,
        vocab_size: int | None = None,
        clock: Clock | None = None,
        load_tokenizer: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or WallClock()
        self.runner = runner
        self.tokenizer = tokenizer
        self.load_tokenizer = load_tokenizer
        self.eos_token_ids = frozenset(eos_token_ids)
        self.vocab_size = vocab_size
        self.kv = KVCacheManager(
            config.num_pages,
            config.page_size,
            config.eviction_policy,
            config.enable_prefix_cache,
            num_host_pages=config.num_host_pages or 0,
            transfer=runner.kv_transfer,  # None: bookkeeping-only transfers
            write_through=config.write_through,
            prefetch_k=config.prefetch_k,
            wait_for_room=config.host_load_waits,
            page_bytes=runner.kv_bytes_per_token * config.page_size,
            clock=self.clock.now,  # times host loads
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
        self.post = Postprocessor(
            self.batcher,
            runner,
            self.clock,
            self.stats,
            self.requests,
            self._detok,
            self.eos_token_ids,
            self.max_model_len,
        )
        self.implicit = ImplicitDecodes(self.post)
        self.stream_outputs = True  # False: `step` reports finished requests only

    @classmethod
    def from_config(cls, config: EngineConfig | None = None, **overrides) -> LLMEngine:
        """Load the model named in the config (default: the embedded SmolLM2-135M), or
        with `backend="sim"` build a cost-model engine (no weights, virtual clock)."""
        config = config or EngineConfig(**overrides)
        if config.backend == "sim":
            from agentrt.engine.cost_model.engine import sim_parts

            return cls(config, **vars(sim_parts(config)))
        from agentrt.engine.torch_engine import torch_parts

        return cls(config, **vars(on_compute_thread(torch_parts, config)))

    def ensure_tokenizer(self) -> Any:
        """The tokenizer; a missing one is loaded now by ``load_tokenizer`` where given
        (the sim backend's, of `config.model`). None for a model without one."""
        if self.tokenizer is None and self.load_tokenizer is not None:
            self.tokenizer = self.load_tokenizer()
        return self.tokenizer

    def tokenize(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            if self.ensure_tokenizer() is None:
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
        priority: int = 0,
        program_start: float | None = None,
        pin_key: Hashable | None = None,
        ids_checked: bool = False,
    ) -> str:
        """Queue a request; returns its id. Invalid requests raise here and leave the engine
        untouched. `prefix_len`: the leading tokens that are `agent_id`'s fixed prefix (for
        workflow-aware eviction). `priority` (lower first), then `program_start` (engine-clock start
        of its workflow; default: arrival) order the waiting queue. `pin_key`: a pin (`pin`) this
        request takes over, released once it is admitted (its own hold on its prefix replaces the
        pin). `ids_checked`: `prompt` is a list of ints in [0, vocab_size), taken without conversion
        or range check (the simulator's prompts)."""
        params = SamplingParams() if params is None else params
        token_ids = list(prompt) if ids_checked else self.tokenize(prompt)
        check_prompt(token_ids, self.max_model_len, None if ids_checked else self.vocab_size)
        check_request(params, self.vocab_size, len(token_ids), request_id, agent_id, prefix_len)
        seq = Sequence(
            token_ids,
            params,
            agent_id=agent_id,
            prefix_len=prefix_len,
            arrival_time=self.clock.now(),
            priority=priority,
            program_start=program_start,
            pin_key=pin_key,
        )
        if request_id is not None:
            seq.request_id = request_id
        if params.min_tokens or params.structured_output is not None:
            seq.constraints = self.runner.constraints(params)
        if params.logprobs is not None:
            seq.logprobs = []
        with self._lock:
            if seq.request_id in self.requests:
                raise ValueError(f"duplicate request id {seq.request_id!r}")
            self.requests[seq.request_id] = seq
            self._inbox.append(seq)
        return seq.request_id

    def abort(self, request_id: str) -> None:
        """Cancel a request; its KV is released at the next step (or `release_aborted`)."""
        self._aborts.append(request_id)

    def pin(self, key: Hashable, token_ids: list[int], rank: float = 0.0) -> None:
        """Hold the cached device prefix of `token_ids` under `key` until `unpin(key)`,
        from the next step on; pins give way when a request needs their pages, the
        highest `rank` first (the newest among equals)."""
        self.kv.pins.request(key, list(token_ids), rank)

    def unpin(self, key: Hashable) -> None:
        self.kv.pins.request(key, None)

    def release_aborted(self) -> None:
        """Apply the queued aborts now, releasing their KV, without running a batch (for
        a caller that stops stepping, e.g. `AsyncLLM` closing). Not while a step runs."""
        self._on_runner_thread(self._drain_inbox)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def step(self) -> list[RequestOutput]:
        """Run one batch. Returns an output for every request that changed (only for
        those that finished when `stream_outputs` is False)."""
        return self._on_runner_thread(self._step)

    def _on_runner_thread(self, fn: Callable[[], list[RequestOutput]]) -> list[RequestOutput]:
        return on_compute_thread(fn) if self.runner.uses_compute_thread else fn()

    def _step(self) -> list[RequestOutput]:
        """Schedule, execute (with the group's members when they can step implicitly;
        else the group dissolves for a plain step), postprocess."""
        outputs = self._drain_inbox()
        group = self.runner.decode_group
        plan = None
        if group is not None:
            self.kv.poll()  # as `Batcher.schedule` does first
            if self._quiet:
                plan = self.implicit.plan(group)
            if plan is None:
                group.dissolve()  # a plain step, then the decoders regroup
        if plan is None:
            batch = self.batcher.schedule()
        else:
            self.implicit.allocate_pages(group, plan.needs)
            batch = self.batcher.schedule_besides(group.since, plan.prefills)
        self.stats.preemptions += len(batch.preempted)
        members = len(group) if plan is not None else 0
        if not batch and not members:
            if self.kv.loads_in_flight and self.batcher.waiting:
                self.kv.wait_for_loads(0.05)  # only loads can unblock the waiting requests
        elif plan is not None:
            finishing = group.finishing()
            sampled = self.implicit.run_step(group, batch)
            outputs += self.post.finish_members(finishing)
            outputs += self.post.apply(batch, sampled, False)
            self.implicit.join(group, [item.seq for item in batch.items])
        else:
            t0 = self.clock.now()
            self.stats.steps += 1
            self.stats.batch_sizes.append(len(batch.items))
            try:
                sampled = self.runner.execute(batch)
            except Exception as exc:  # fail only the requests at fault
                isolated = isolate(self.runner, batch, exc)
                for seq, why in isolated.failed.items():
                    outputs.append(self.post.fail(seq, why))
                batch, sampled = isolated.ran, isolated.tokens
            self.stats.forward_seconds += self.clock.now() - t0
            outputs += self.post.apply(batch, sampled, self.stream_outputs)
        if group is not None and plan is None:
            self._regroup()
        return outputs

    def fast_forward(self, until: float, finished: list[RequestOutput], origin: float = 0.0) -> int:
        """With `implicit_decodes`: run, as `step` would, the steps that start at a clock
        ``t - origin < until`` while every running sequence is a member and nothing can
        be admitted (finished members' outputs appended to ``finished``), stopping before
        a step the free list cannot supply. Returns how many ran (0: call `step`); their
        end times are `decode_group.last_step_ends`."""
        group = self.runner.decode_group
        if not group or self._inbox or self._aborts or self.kv.pins.requests or not self._quiet:
            return 0
        return self.implicit.fast_forward(group, until, finished, origin)

    @property
    def implicit_decodes(self) -> bool:
        return self.runner.decode_group is not None

    @implicit_decodes.setter
    def implicit_decodes(self, on: bool) -> None:
        """On: outputs only when requests finish, and the decoders join the group (a
        runner without the capability raises ValueError). Off: their tokens catch up."""
        if on and self.runner.decode_group is None:
            self.runner.start_decode_group(self.kv.page_size, self.max_model_len)
            self.stream_outputs = False
            self._regroup()
        elif not on:
            self.runner.stop_decode_group()

    @property
    def _quiet(self) -> bool:
        """No outputs to stream or detokenize: what implicit decodes need."""
        return self.tokenizer is None and not self.stream_outputs

    def _regroup(self) -> None:
        """Every running sequence that decodes joins the (empty) group."""
        group = self.runner.decode_group
        if group is not None and self._quiet:
            self.implicit.join(group, self.batcher.running)

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
                self.post.finish(seq, FinishReason.ABORT)
                outputs.append(self.post.output(seq, []))
        self.kv.pins.apply_requests(self.kv.enable_prefix_cache)
        return outputs

    def reset_prefix_cache(self) -> None:
        """Drop every cached prefix (only between runs: no request may be in flight)."""
        if self.has_unfinished_requests():
            raise RuntimeError("cannot reset the prefix cache while requests are in flight")
        self.kv.reset()

    def check_integrity(self) -> None:
        """Page accounting across the tree, the free list and live sequences."""
        self.kv.check_integrity(self.batcher.running)
