"""The `sim` backend: an `LLMEngine` whose runner is the cost model.

No weights are loaded and no KV tensors exist, so a pool of millions of virtual pages
costs only the allocator's free list. The tokenizer (of `config.model`, default the
embedded SmolLM2) is loaded the first time a text prompt needs it; token-id prompts never
load it.
"""

from __future__ import annotations

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.decode_group import DecodeGroup
from agentrt.engine.cost_model.kv_transfer import SimKVTransfer
from agentrt.engine.cost_model.model import StepFeatures
from agentrt.engine.cost_model.profile import load_profile
from agentrt.engine.cost_model.runner import CostModelRunner
from agentrt.engine.llm_engine import LLMEngine, Prompt
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sequence import FinishReason, Sequence, SequenceStatus


class SimLLMEngine(LLMEngine):
    """`LLMEngine` on a `CostModelRunner`: `clock.now()` is virtual seconds.

    With `implicit_decodes` on, its steady decoders live in a `DecodeGroup`: a step
    costs the events due in it, not an update per running sequence, and gives the same
    timeline, tokens, pages and statistics as the plain step. Meanwhile the running
    sequences' `token_ids` and `num_computed_tokens` lag behind (each catches up when it
    finishes, is aborted or the group dissolves), so only callers that read finished
    requests' outputs, or time tokens from `DecodeGroup.ends` and `left`, may turn it
    on (the co-simulation and the sim replay do).
    """

    runner: CostModelRunner
    decode_group: DecodeGroup | None = None

    @property
    def implicit_decodes(self) -> bool:
        return self.decode_group is not None

    @implicit_decodes.setter
    def implicit_decodes(self, on: bool) -> None:
        if on and self.decode_group is None:
            self.stream_outputs = False  # outputs only when requests finish
            group = DecodeGroup(self.kv.page_size, self.max_model_len, self.runner.append_tokens)
            self.decode_group = group
            self._regroup()
        elif not on and self.decode_group is not None:
            self.decode_group.dissolve()
            self.decode_group = None

    def _step(self) -> list[RequestOutput]:
        group = self.decode_group
        if group is None:
            return super()._step()
        outputs = self._drain_inbox()
        batcher, kv = self.batcher, self.kv
        kv.poll()  # as `Batcher.schedule` does first
        running = batcher.running
        prefills = [s for s in running if s not in group] if len(group) != len(running) else []
        needs = group.pages_due()
        if (
            not self._pages_certain(len(needs))  # the plain step may preempt
            or len(group) > batcher.max_num_batched_tokens
            or self.tokenizer is not None
            or self.stream_outputs
            or any(s.num_computed_tokens >= len(s.token_ids) - 1 for s in prefills)
        ):
            group.dissolve()  # the plain step, then regroup
            outputs += super()._step()
            self._regroup()
            return outputs
        self._allocate_pages(needs)
        batch = batcher.schedule_besides(group.since, prefills)
        self.stats.preemptions += len(batch.preempted)
        members = len(group)
        if not members and not batch:
            if kv.loads_in_flight:
                kv.wait_for_loads(0.05)
            return outputs
        f = StepFeatures.of(batch)  # the explicit items; the members are decodes
        context = f.decode_context + group.context()
        features = StepFeatures(f.prefill_tokens, f.decodes + members, f.prefill_pairs, context)
        return outputs + self._run_group_step(features, batch, members)

    def _run_group_step(
        self, features: StepFeatures, batch: ScheduledBatch, members: int
    ) -> list[RequestOutput]:
        finishing = self._run_members(features, members, len(batch.items))
        sampled = self.runner.sample(batch)
        outputs = self._finish_members(finishing)
        outputs += self._apply(batch, sampled)
        for item in batch.items:  # those now decoding join the group
            self._maybe_join(item.seq)
        return outputs

    def fast_forward(self, until: float, finished: list[RequestOutput], origin: float = 0.0) -> int:
        """With `implicit_decodes`: run the steps that start at a clock ``t`` with
        ``t - origin < until`` while every running sequence is a member and nothing can
        be admitted, as `step` would, the last one possibly finishing members (their
        outputs appended to ``finished``). Stops before a step whose new pages the free
        list cannot supply. Returns how many steps ran (0: call `step`); their end times
        are the last entries of `decode_group.ends`."""
        group, clock = self.decode_group, self.clock
        if group is None or not group or self._inbox or self._aborts:
            return 0
        if not clock.now() - origin < until:
            return 0
        kv, batcher = self.kv, self.batcher
        kv.poll()  # as the next step would first
        members = len(group)
        if (
            kv.loads_in_flight
            or members != len(batcher.running)
            or members > batcher.max_num_batched_tokens
            or self.tokenizer is not None
            or self.stream_outputs
            or (batcher.waiting and not batcher.admission_blocked(members))
        ):
            return 0
        steps = 0
        while clock.now() - origin < until:
            needs = group.pages_due()
            if len(needs) > kv.allocator.num_free:
                break  # that step evicts, after which waiting requests may fit: `step`
            self._allocate_pages(needs)
            features = StepFeatures(0, members, 0, group.context())
            finishing = self._run_members(features, members, 0)
            steps += 1
            if finishing:
                finished += self._finish_members(finishing)
                break
        return steps

    def _run_members(self, features: StepFeatures, members: int, explicit: int) -> list[Sequence]:
        """Advance the clock by a step of ``features`` (``members`` group decodes and
        ``explicit`` other items), count it and the members' tokens, and move the group
        on; returns the members that finish in it."""
        group, clock, stats = self.decode_group, self.clock, self.stats
        assert group is not None
        t0 = clock.now()
        self.runner.advance(self.runner.cost.step_seconds(features))
        stats.forward_seconds += clock.now() - t0
        stats.steps += 1
        stats.batch_sizes.append(members + explicit)
        stats.decode_tokens += members
        stats.generated_tokens += members
        finishing = group.finishing()
        group.advance(clock.now())
        return finishing

    def _pages_certain(self, num_pages: int) -> bool:
        """Whether allocating ``num_pages`` single pages surely succeeds: from the free
        list, or from the free list and eviction where there is no host tier (so no
        loads: every unlocked resident page can be evicted)."""
        kv = self.kv
        free = kv.allocator.num_free
        if num_pages <= free:
            return True
        return kv.host_allocator is None and num_pages <= free + kv.tree.evictable_pages

    def _allocate_pages(self, needs: list[Sequence]) -> None:
        """One page each for the members in ``needs`` (`DecodeGroup.pages_due`), in
        `running` order, by the calls the plain step makes (`KVCacheManager.allocate`,
        which evicts when the free list is short)."""
        group = self.decode_group
        assert group is not None
        for seq in needs:
            group.materialize(seq)  # `allocate` reads its computed tokens
            if not self.kv.allocate(seq, 1):  # `_pages_certain` said it would
                raise AssertionError(f"no page for decoding {seq.request_id}")
        group.paged(needs)

    def _finish_members(self, seqs: list[Sequence]) -> list[RequestOutput]:
        """Finish members at their length limit (`_apply`'s check), in `running` order."""
        outputs = []
        for seq in seqs:
            self._finish(seq, FinishReason.LENGTH)  # leaves the group first
            outputs.append(self._output(seq, seq.token_ids[-1:]))
        return outputs

    def _finish(self, seq: Sequence, reason: FinishReason) -> None:
        group = self.decode_group
        if group is not None and seq in group:
            group.leave(seq)
        super()._finish(seq, reason)

    def _maybe_join(self, seq: Sequence) -> None:
        group = self.decode_group
        assert group is not None
        p = seq.params
        total = len(seq.token_ids)
        if (
            seq.status is SequenceStatus.RUNNING
            and seq not in group
            and total - seq.num_computed_tokens == 1
            and total > len(seq.prompt_token_ids)
            and not p.stop_token_ids
            and not p.stop
            and (p.ignore_eos or not self.eos_token_ids)
        ):
            group.join(seq)

    def _regroup(self) -> None:
        """Every running sequence that decodes joins the (empty) group."""
        if self.tokenizer is None and not self.stream_outputs:
            for seq in self.batcher.running:
                self._maybe_join(seq)

    def tokenize(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str) and self.tokenizer is None:
            from agentrt.engine import loader

            self.tokenizer = loader.load_tokenizer(loader.resolve_model_dir(self.config.model))
        return super().tokenize(prompt)


def build_sim_engine(config: EngineConfig) -> SimLLMEngine:
    """A cost-model engine for `config` with the profile `config.profile`."""
    profile = load_profile(config.profile)
    runner = CostModelRunner(profile, vocab_size=profile.vocab_size)
    runner.kv_transfer = SimKVTransfer(runner, profile.kv_bytes_per_token * config.page_size)
    return SimLLMEngine(
        config, runner, tokenizer=None, vocab_size=profile.vocab_size, clock=runner.clock
    )
