"""The engine's side of implicit decodes: when the members of the runner's `DecodeGroup`
may step without being scheduled, their new pages, who joins, and the steps themselves.

Counting steps gives the same timeline, tokens, pages and statistics as the plain step as
long as the members' pages are certain (in the plain schedule they come first, so they
neither are preempted nor preempt) and every other running sequence is prefilling;
otherwise the group dissolves for a plain step and regroups after it. A member's
`token_ids` and `num_computed_tokens` catch up when it finishes, is aborted or the group
dissolves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.postprocess import Postprocessor
from agentrt.engine.sequence import Sequence, SequenceStatus

if TYPE_CHECKING:
    from agentrt.engine.cost_model.decode_group import DecodeGroup


_NO_BATCH = ScheduledBatch()  # a step of the members alone


class GroupPlan(NamedTuple):
    prefills: list[Sequence]  # the other running sequences, all prefilling, in order
    needs: list[Sequence]  # the members due a page (`DecodeGroup.pages_due`)


class ImplicitDecodes:
    """Decides, prepares and runs the group steps of an engine's runner (its
    `decode_group`); ``post``: the engine's postprocessor (and its tables)."""

    def __init__(self, post: Postprocessor) -> None:
        self.post = post
        self.runner = post.runner
        self.batcher = post.batcher
        self.kv = post.kv
        self.clock = post.clock
        self.stats = post.stats
        self.eos_token_ids = post.eos_token_ids

    def plan(self, group: DecodeGroup) -> GroupPlan | None:
        """A step with the members decoding implicitly, or None where the plain step is
        needed: it may preempt, the members exceed the token budget, or a
        prefill is about to decode. The caller polls the KV manager first."""
        batcher = self.batcher
        running = batcher.running
        prefills = [s for s in running if s not in group] if len(group) != len(running) else []
        needs = group.pages_due()
        if (
            not self._pages_certain(len(needs))
            or len(group) > batcher.max_num_batched_tokens
            or not all(s.is_prefilling for s in prefills)
        ):
            return None
        return GroupPlan(prefills, needs)

    def run_step(self, group: DecodeGroup, batch: ScheduledBatch) -> list[int]:
        """Run ``batch`` with the members decoding besides, and count the step."""
        stats, members = self.stats, len(group)
        t0 = self.clock.now()
        sampled = self.runner.execute_with_group(batch)
        stats.forward_seconds += self.clock.now() - t0
        stats.steps += 1
        stats.batch_sizes.append(members + len(batch.items))
        stats.decode_tokens += members
        stats.generated_tokens += members
        return sampled

    def fast_forward(
        self, group: DecodeGroup, until: float, finished: list[RequestOutput], origin: float
    ) -> int:
        """`LLMEngine.fast_forward` once the engine has no new request or abort and no
        outputs to stream or detokenize."""
        kv, batcher, clock, members = self.kv, self.batcher, self.clock, len(group)
        if not clock.now() - origin < until:
            return 0
        kv.poll()  # as the next step would first
        if (
            kv.loads_in_flight
            or members != len(batcher.running)
            or members > batcher.max_num_batched_tokens
            or (batcher.waiting and not batcher.admission_blocked(members))
        ):
            return 0  # not the members' steps alone
        steps = 0
        while clock.now() - origin < until:
            needs = group.pages_due()
            if len(needs) > kv.allocator.num_free:
                break  # that step evicts, after which waiting requests may fit: `step`
            self.allocate_pages(group, needs)
            finishing = group.finishing()
            self.run_step(group, _NO_BATCH)
            steps += 1
            if finishing:
                finished += self.post.finish_members(finishing)
                break
        return steps

    def _pages_certain(self, num_pages: int) -> bool:
        """Whether allocating ``num_pages`` single pages surely succeeds: from the free
        list, or from the free list and eviction where there is no host tier (so no
        loads: every unlocked resident page can be evicted)."""
        kv = self.kv
        free = kv.allocator.num_free
        if num_pages <= free:
            return True
        return kv.host is None and num_pages <= free + kv.tree.evictable_pages

    def allocate_pages(self, group: DecodeGroup, needs: list[Sequence]) -> None:
        """One page each for the members in ``needs`` (`DecodeGroup.pages_due`), in
        `running` order, by the calls the plain step makes (`KVCacheManager.allocate`,
        which evicts when the free list is short)."""
        for seq in needs:
            group.materialize(seq)  # `allocate` reads its computed tokens
            if not self.kv.allocate(seq, 1):  # `plan` said it would succeed
                raise AssertionError(f"no page for decoding {seq.request_id}")
        group.paged(needs)

    def join(self, group: DecodeGroup, seqs: list[Sequence]) -> None:
        """Those of ``seqs`` that decode with no stop condition but length join."""
        eos = self.eos_token_ids
        for seq in seqs:
            p = seq.params
            total = len(seq.token_ids)
            if (
                seq.status is SequenceStatus.RUNNING
                and seq not in group
                and total - seq.num_computed_tokens == 1
                and total > len(seq.prompt_token_ids)
                and not p.stop_token_ids
                and not p.stop
                and (p.ignore_eos or not eos)
            ):
                group.join(seq)
