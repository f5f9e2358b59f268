"""Fast-forward a sim engine through pure-decode steps, exactly as `engine.step()` would.

When nothing can change a sim engine's batch for a while, each step is fully determined:
the same sequences decode one token each, and the cost is the profile's decode cost at a
context that grows by the batch size per step. `fast_forward_decodes` runs those steps
without the batcher: same clock advances (identical float operations), same synthetic
tokens, same page allocations (step by step, in batch order, so the same page ids), same
stats. The conditions (checked on entry, else it returns no steps):

- no new requests, no aborts, no host->device loads in flight, no tokenizer;
- every running sequence decodes (one token left to compute, at least one output token
  already, no stop strings or stop tokens); waiting requests are allowed only when the
  batcher would skip admission (queue head blocked, `Batcher.admission_blocked`) or
  the batch is at `max_num_seqs`, so nothing is admitted.

It stops before the step in which the first sequence would finish (that step runs
normally and reports the outputs), before any step that starts at or after ``until``
(when another event may submit a request that must join it) and before any step whose
new pages the free list cannot supply (that step may evict or preempt: it runs normally).
With ``finished`` (a list) it runs that finishing step too, as its last: the sequences
that reach their length limit are finished in batch order, as `LLMEngine._apply` would
(`_length_stop`, `_finish`), and their outputs appended to ``finished``. Admission is
blocked for the whole stretch, so the finishing step admits nothing either.
"""

from __future__ import annotations

from agentrt.engine.cost_model.engine import SimLLMEngine
from agentrt.engine.cost_model.model import StepFeatures
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sequence import Sequence, SequenceStatus


def fast_forward_decodes(
    engine: SimLLMEngine,
    until: float,
    max_steps: int | None = None,
    origin: float = 0.0,
    *,
    finished: list[RequestOutput] | None = None,
) -> list[float]:
    """Run the pure-decode steps that start at a time ``t`` with ``t - origin < until``
    (at most ``max_steps``); returns the clock at the end of each step run (empty when
    the engine's state does not allow it: then call ``engine.step()``). Every running
    sequence got one token per returned step. ``finished``: also run the step in which
    sequences finish, as the last one, and append their outputs here."""
    batcher = engine.batcher
    if engine._inbox or engine._aborts or engine.tokenizer is not None:
        return []
    if not engine.clock.now() - origin < until:
        return []  # not even one step starts before `until`
    kv = engine.kv
    kv.poll()  # what the next step's schedule() would do first
    if kv.loads_in_flight:
        return []
    running = batcher.running
    if not running or len(running) > batcher.max_num_batched_tokens:
        return []
    if batcher.waiting and not batcher.admission_blocked(len(running)):
        return []
    ends_with_finish = finished is not None
    k = engine.max_model_len if max_steps is None else max_steps + (not ends_with_finish)
    max_len = engine.max_model_len
    eos = engine.eos_token_ids
    ps = kv.page_size
    running_status = SequenceStatus.RUNNING
    context = 0
    room: list[int] = []  # per running sequence (reversed): decode steps before a new page
    last: list[int] = []  # per running sequence (reversed): the step in which it finishes
    for seq in reversed(running):  # newly admitted (likely prefilling) ones are last
        total = len(seq.token_ids)
        done = seq.num_computed_tokens
        prompt = len(seq.prompt_token_ids)
        p = seq.params
        if (
            seq.status is not running_status
            or total - done != 1
            or total == prompt
            or done == seq.num_cached_tokens
            or p.stop_token_ids
            or p.stop
            or (eos and not p.ignore_eos)
        ):
            return []
        left = p.max_tokens - (total - prompt)  # k = min(k, left, max_len - total)
        if max_len - total < left:
            left = max_len - total
        if left < k:
            k = left
        last.append(left)
        if k <= 1 and not ends_with_finish:
            return []  # a sequence finishes in the next step: it runs normally
        context += done + 1
        room.append(len(seq.block_table) * ps - done)
    if not ends_with_finish:
        k -= 1  # the step where a sequence finishes runs normally
    room.reverse()
    last.reverse()
    needs = _page_needs(room, ps, k)
    free = kv.allocator.num_free
    if len(needs) > free:  # stop before the first step the free list cannot supply
        k = needs[free][0]
    cost = engine.runner.cost
    batch = len(running)
    seconds: list[float] = []
    t = engine.clock.now()
    while len(seconds) < k and t - origin < until:
        s = cost.step_seconds(StepFeatures(0, batch, 0, context + len(seconds) * batch))
        seconds.append(s)
        t += s
    n = len(seconds)
    if n == 0:
        return []
    alloc = kv.allocator.alloc
    for step, pos in needs:
        if step >= n:
            break
        running[pos].block_table.extend(alloc(1))
    runner, clock, stats = engine.runner, engine.clock, engine.stats
    runner.append_tokens(running, n)
    for seq in running:
        seq.num_computed_tokens += n
    ends: list[float] = []
    for s in seconds:
        t0 = clock.now()
        clock.advance(s)  # type: ignore[attr-defined]
        runner.busy_seconds += s
        stats.forward_seconds += clock.now() - t0
        ends.append(clock.now())
    stats.steps += n
    stats.batch_sizes.extend([batch] * n)
    stats.decode_tokens += n * batch
    stats.generated_tokens += n * batch
    if finished is not None:  # the last step may finish sequences: those with last <= n
        due = [seq for seq, end in zip(running, last, strict=True) if end <= n]
        _finish_at_length(engine, due, finished)
    return ends


def _finish_at_length(
    engine: SimLLMEngine, seqs: list[Sequence], finished: list[RequestOutput]
) -> None:
    """Finish, in batch order, those of ``seqs`` at their length limit (the check
    `LLMEngine._apply` makes after a step) and append their outputs."""
    done = []
    for seq in seqs:
        n = len(seq.token_ids)
        reason = engine._length_stop(n, len(seq.prompt_token_ids), seq.params.max_tokens)
        if reason is not None:
            done.append((seq, reason))
    for seq, reason in done:
        engine._finish(seq, reason)
        finished.append(engine._output(seq, seq.token_ids[-1:]))


def _page_needs(room: list[int], page_size: int, k: int) -> list[tuple[int, int]]:
    """(step, batch position) of every new page the running sequences need in the next
    ``k`` decode steps, in the order the batcher would allocate them. ``room[pos]``:
    the free slots in sequence ``pos``'s pages (step i computes token num_computed + i,
    which needs room for num_computed + i + 1, so a new page at steps room, room + ps...)."""
    needs = [
        (i, pos) for pos, first in enumerate(room) if first < k for i in range(first, k, page_size)
    ]
    needs.sort()
    return needs
