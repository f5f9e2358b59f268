"""Fast-forward a sim engine through pure-decode steps (opt-in; used by the co-simulation).

When nothing can change a sim engine's batch for a while (no waiting or new requests,
no aborts, no loads in flight, every running sequence decoding one token per step, no
stop strings or stop tokens, no tokenizer), each step is fully determined: the same
sequences decode one token each, and the cost is the profile's decode cost at a context
that grows by the batch size per step. `fast_forward_decodes` runs those steps without
the batcher: same clock advances (identical float operations), same synthetic tokens,
same stats. It stops one step before the first sequence would finish (that step runs
normally and reports outputs) and before any step that would start at or after
``until`` (when another event may submit a request that must join it).

Difference to stepping one by one: each sequence's pages for all skipped steps are
allocated up front, so an eviction may happen a few steps earlier. With no eviction
the timeline is identical (tested).
"""

from __future__ import annotations

from agentrt.engine.cost_model.engine import SimLLMEngine
from agentrt.engine.cost_model.model import StepFeatures
from agentrt.engine.sequence import SequenceStatus


def fast_forward_decodes(engine: SimLLMEngine, until: float) -> int:
    """Run the pure-decode steps that start before ``until``; returns how many ran
    (0 when the engine's state does not allow it: then call ``engine.step()``)."""
    batcher = engine.batcher
    if (
        engine._inbox
        or engine._aborts
        or batcher.waiting
        or engine.tokenizer is not None
        or engine.kv.loads_in_flight
    ):
        return 0
    running = batcher.running
    if not running or len(running) > batcher.max_num_batched_tokens:
        return 0
    k = engine.max_model_len
    for seq in running:
        if (
            seq.status is not SequenceStatus.RUNNING
            or seq.num_tokens - seq.num_computed_tokens != 1
            or seq.params.stop_token_ids
            or seq.params.stop
        ):
            return 0
        left = seq.params.max_tokens - seq.num_output_tokens
        k = min(k, left, engine.max_model_len - seq.num_tokens)
    k -= 1  # the step where a sequence finishes runs normally
    cost = engine.runner.cost
    batch = len(running)
    context = sum(seq.num_computed_tokens + 1 for seq in running)
    seconds: list[float] = []
    t = engine.clock.now()
    while len(seconds) < k and t < until:
        s = cost.step_seconds(StepFeatures(0, batch, 0, context + len(seconds) * batch))
        seconds.append(s)
        t += s
    n = len(seconds)
    if n == 0:
        return 0
    kv = engine.kv
    for seq in running:
        if not kv.allocate(seq, n):
            return 0  # pages already given to earlier sequences are theirs to use anyway
    runner, clock, stats = engine.runner, engine.clock, engine.stats
    for seq in running:
        seq.token_ids.extend(runner.tokens_for(seq.request_id, seq.num_tokens, n))
        seq.num_computed_tokens += n
    for s in seconds:
        t0 = clock.now()
        clock.advance(s)  # type: ignore[attr-defined]
        runner.busy_seconds += s
        stats.forward_seconds += clock.now() - t0
    stats.steps += n
    stats.batch_sizes.extend([batch] * n)
    stats.decode_tokens += n * batch
    stats.generated_tokens += n * batch
    return n
