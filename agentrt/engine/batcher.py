"""Continuous batching: which sequences run in the next step, and how many tokens each.

Each step spends a token budget: decodes first (one token each), then prefill chunks of
running sequences, then new admissions. When pages run out the latest admitted sequence
is preempted: its computed pages go to the prefix cache and it is recomputed later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Container
from dataclasses import dataclass, field

from agentrt.engine.sequence import Sequence, SequenceStatus
from agentrt.kvmanager.loader import Prepared
from agentrt.kvmanager.manager import KVCacheManager


@dataclass(slots=True)
class ScheduledSeq:
    seq: Sequence
    num_new_tokens: int

    @property
    def samples(self) -> bool:
        """True when this chunk reaches the sequence's last token, so a token is sampled."""
        return self.seq.num_computed_tokens + self.num_new_tokens == self.seq.num_tokens


@dataclass
class ScheduledBatch:
    items: list[ScheduledSeq] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)


def _is_chunk(item: ScheduledSeq) -> bool:
    return item.num_new_tokens != 1


class Batcher:
    def __init__(self, kv: KVCacheManager, max_num_batched_tokens: int, max_num_seqs: int):
        self.kv = kv
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_num_seqs = max_num_seqs
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        # Skip an admission attempt that cannot have a different outcome than the last
        # one (`_admit_state`); False re-runs every attempt (the reference behaviour).
        self.skip_blocked = True
        self._blocked: tuple | None = None
        self._admissions = 0

    def add(self, seq: Sequence) -> None:
        """Queue a new sequence by `Sequence.queue_key` (after its equals): requests of
        workflows that began earlier go first, so a flood of new workflows does not
        starve one that is further along. Plain arrivals keep arrival order."""
        waiting = self.waiting
        key = seq.queue_key
        if not waiting or waiting[-1].queue_key <= key:
            waiting.append(seq)
            return
        i = len(waiting)
        while i > 0 and waiting[i - 1].queue_key > key and not waiting[i - 1].num_preemptions:
            i -= 1
        waiting.insert(i, seq)

    def remove(self, seq: Sequence) -> None:
        """Take a sequence out (finished or aborted) and release its KV."""
        try:
            self.running.remove(seq)
        except ValueError:
            pass  # not running
        else:
            self.kv.cache(seq)
            self.kv.release(seq)
            return
        if seq in self.waiting:
            self.waiting.remove(seq)
            self.kv.forget(seq)
            if seq.pin_key is not None:  # it never took its pin over: the pin ends
                self.kv.pins.unpin(seq.pin_key)

    def schedule(self) -> ScheduledBatch:
        self.kv.poll()  # finished host->device loads, new hints / prefetch
        decodes: list[Sequence] = []
        prefills: list[Sequence] = []
        for s in self.running:
            (prefills if s.is_prefilling else decodes).append(s)
        return self._schedule(decodes + prefills, prefills, self.max_num_batched_tokens, ())

    def schedule_besides(
        self, implicit: Collection[Sequence], prefills: list[Sequence]
    ) -> ScheduledBatch:
        """`schedule` for a caller that runs the running decoders in ``implicit`` itself,
        one token each, with their pages allocated (in `schedule` they come first, so they
        are neither preempted nor preempt anyone here). ``prefills``: the other running
        sequences, all prefilling, in `running` order. The caller polls the KV manager
        first."""
        budget = self.max_num_batched_tokens - len(implicit)
        return self._schedule(prefills, list(prefills), budget, implicit)

    def _schedule(
        self,
        seqs: list[Sequence],
        prefills: list[Sequence],
        budget: int,
        implicit: Container[Sequence],
    ) -> ScheduledBatch:
        batch = ScheduledBatch()
        items = batch.items
        running = SequenceStatus.RUNNING
        preempted = batch.preempted
        for seq in seqs:
            if budget == 0:
                break
            if preempted and seq.status is not running:
                continue  # preempted earlier in this loop
            done = seq.num_computed_tokens
            n = len(seq.token_ids) - done
            if n > budget:
                n = budget
            if self._allocate_or_preempt(seq, n, batch, implicit):
                items.append(ScheduledSeq(seq, n))
                budget -= n
        if not preempted:  # so every sequence in `prefills` is still running
            budget = self._admit(batch, budget, prefills)
        # Attention metadata wants decodes first, then prefill chunks.
        items.sort(key=_is_chunk)
        return batch

    def _allocate_or_preempt(
        self, seq: Sequence, n: int, batch: ScheduledBatch, implicit: Container[Sequence]
    ) -> bool:
        """Allocate for ``seq``'s next ``n`` tokens, preempting the latest running
        sequence not yet scheduled in ``batch`` nor ``implicit`` (``seq`` itself last)
        until it fits."""
        while not self.kv.allocate(seq, n):
            scheduled = {id(item.seq) for item in batch.items}
            victims = [
                s
                for s in self.running
                if id(s) not in scheduled and s is not seq and s not in implicit
            ]
            if not victims:
                self._preempt(seq, batch)
                return False
            self._preempt(victims[-1], batch)
        return True

    def _preempt(self, seq: Sequence, batch: ScheduledBatch) -> None:
        self.running.remove(seq)
        self.kv.cache(seq)
        self.kv.release(seq)
        seq.status = SequenceStatus.WAITING
        seq.num_computed_tokens = 0
        seq.num_preemptions += 1
        self.waiting.appendleft(seq)
        batch.preempted.append(seq)

    def _admit(self, batch: ScheduledBatch, budget: int, prefilling: list[Sequence]) -> int:
        """Admit waiting sequences while budget, batch size and pages allow.
        ``prefilling``: the running sequences that are computing their prompt, in
        `running` order; admitted ones that prefill are appended."""
        if self._blocked is not None and self._blocked == self._admit_state(budget):
            return budget  # the same attempt failed and nothing it depends on changed
        self._blocked = None
        entry_budget = budget
        deferred: list[Sequence] = []
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting.popleft()
            prepared = self.kv.prepare(seq)
            if prepared is Prepared.LOADING:
                deferred.append(seq)  # its prefix is still loading from host: run others
                continue
            if prepared is Prepared.NO_ROOM:
                # it waits at the head for running requests to free room for its load:
                # loading what the host holds beats computing it again
                self.waiting.appendleft(seq)
                self._note_blocked(not deferred and budget == entry_budget, budget)
                break
            self.kv.match(seq)
            if self._shares_inflight_prefix(seq, prefilling):
                # Another sequence is computing this prefix right now: wait one step and
                # reuse it from the cache instead of computing it twice.
                self.kv.unmatch(seq)
                deferred.append(seq)
                continue
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if not self.kv.allocate(seq, n):
                self.kv.unmatch(seq)
                self.waiting.appendleft(seq)
                self._note_blocked(not deferred and budget == entry_budget, budget)
                break
            seq.status = SequenceStatus.RUNNING
            if seq.pin_key is not None:  # it holds its prefix now: the pin it replaces ends
                self.kv.pins.unpin(seq.pin_key)
                seq.pin_key = None
            seq.admission = self._admissions  # `running` is in admission order
            self._admissions += 1
            self.running.append(seq)
            if seq.is_prefilling:
                prefilling.append(seq)
            batch.items.append(ScheduledSeq(seq, n))
            budget -= n
        self.waiting.extendleft(reversed(deferred))
        return budget

    def _note_blocked(self, first_attempt: bool, budget: int) -> None:
        """The head of the queue cannot be admitted; when it was the attempt's first
        try with the whole budget, remember the state so an unchanged retry is skipped."""
        if first_attempt and self.skip_blocked:
            self._blocked = self._admit_state(budget)

    def admission_blocked(self, budget_used: int) -> bool:
        """Whether `schedule` would admit nothing, with no side effect, after the running
        batch took ``budget_used`` tokens: no waiting request, a full batch, no budget
        left, or an attempt that `_admit` would skip."""
        budget = self.max_num_batched_tokens - budget_used
        if not self.waiting or budget <= 0 or len(self.running) >= self.max_num_seqs:
            return True
        return self._blocked is not None and self._blocked == self._admit_state(budget)

    def _admit_state(self, budget: int) -> tuple:
        """What the outcome of an admission attempt that admits nothing depends on: the
        head of the queue, the budget, the batch size and the KV epoch (no lookup,
        eviction, release or load in between; see `KVCacheManager.epoch`). Retrying it
        would redo the same lookup and fail the same way, so `_admit` skips it."""
        kv = self.kv
        head = self.waiting[0] if self.waiting else None
        return (head, budget, len(self.running), kv.epoch, kv.loads_in_flight)

    def _shares_inflight_prefix(self, seq: Sequence, prefilling: list[Sequence]) -> bool:
        """Whether a sequence in ``prefilling`` (running sequences computing their prompt)
        is computing ``seq``'s next page now: the first one with the same tokens in that
        page, if it also has the same tokens before it."""
        if not prefilling or not self.kv.enable_prefix_cache:
            return False
        page = self.kv.page_size
        start = seq.num_computed_tokens
        want = seq.token_ids[start : start + page]
        if len(want) < page or seq.num_tokens - start <= page:
            return False
        for other in prefilling:
            if other.token_ids[start : start + page] == want:
                return seq.token_ids[:start] == other.token_ids[:start]
        return False
