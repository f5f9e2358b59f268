"""The engine's side of implicit decodes: when the members of the runner's `DecodeGroup`
may step without being scheduled, their new pages, and who joins.

A step with implicit decodes must be exactly the plain step: the members come first in
the plain step's schedule, so they are neither preempted nor preempt anyone as long as
their pages are certain; the other running sequences are all prefilling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentrt.engine.batcher import Batcher
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sequence import Sequence, SequenceStatus

if TYPE_CHECKING:
    from agentrt.engine.cost_model.decode_group import DecodeGroup


class ImplicitDecodes:
    """Decides and prepares the group steps of an engine's runner (`runner.decode_group`)."""

    def __init__(self, runner: ModelRunner, batcher: Batcher, eos_token_ids: frozenset[int]):
        self.runner = runner
        self.batcher = batcher
        self.kv = batcher.kv
        self.eos_token_ids = eos_token_ids

    def plan(self, group: DecodeGroup) -> tuple[list[Sequence], list[Sequence]] | None:
        """For a step with the members decoding implicitly: the other running sequences
        (all prefilling, in `running` order) and the members due a page. None where the
        plain step is needed: it may preempt, the members exceed the token budget, or a
        prefill is about to decode. The caller polls the KV manager first."""
        batcher = self.batcher
        running = batcher.running
        prefills = [s for s in running if s not in group] if len(group) != len(running) else []
        needs = group.pages_due()
        if (
            not self._pages_certain(len(needs))
            or len(group) > batcher.max_num_batched_tokens
            or any(s.num_computed_tokens >= len(s.token_ids) - 1 for s in prefills)
        ):
            return None
        return prefills, needs

    def only_members_step(self, group: DecodeGroup) -> bool:
        """Whether the next steps are the members' alone, as long as no request arrives
        or is aborted and their pages come from the free list (`LLMEngine.fast_forward`).
        The caller polls the KV manager first."""
        batcher, members = self.batcher, len(group)
        return not (
            self.kv.loads_in_flight
            or members != len(batcher.running)
            or members > batcher.max_num_batched_tokens
            or (batcher.waiting and not batcher.admission_blocked(members))
        )

    def _pages_certain(self, num_pages: int) -> bool:
        """Whether allocating ``num_pages`` single pages surely succeeds: from the free
        list, or from the free list and eviction where there is no host tier (so no
        loads: every unlocked resident page can be evicted)."""
        kv = self.kv
        free = kv.allocator.num_free
        if num_pages <= free:
            return True
        return kv.host_allocator is None and num_pages <= free + kv.tree.evictable_pages

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
