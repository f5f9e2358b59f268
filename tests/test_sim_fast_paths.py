"""The sim speed-ups change no result: a replay with implicit decodes, the decode
fast-forward and skipped admission retries equals the step-by-step reference, call by
call and timeline span by span, under every policy,
with the KV pool small enough that requests are preempted and prefixes evicted."""

from __future__ import annotations

import itertools
import random

import pytest

from agentrt.engine import sequence
from agentrt.engine.batcher import Batcher
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.sequence import Sequence, SequenceStatus
from agentrt.kvmanager.manager import KVCacheManager
from agentrt.trace import CallRecord
from agentrt.trace.replay import Replayer
from agentrt.trace.replay_options import ReplayOptions
from agentrt.trace.timeline import Timeline


def _records(n: int, seed: int) -> list[CallRecord]:
    """Conversations that grow turn by turn (shared hash-block prefixes), overlapping."""
    rng = random.Random(seed)
    records, convs, t = [], [], 0.0
    for i in range(n):
        t += rng.expovariate(50.0)
        if convs and rng.random() < 0.6:
            blocks = convs[rng.randrange(len(convs))]
            blocks.extend(rng.randrange(10**6) for _ in range(rng.randint(1, 3)))
        else:
            blocks = [rng.randrange(10**6) for _ in range(rng.randint(1, 4))]
            convs.append(blocks)
        records.append(
            CallRecord(
                call_id=f"c{i}",
                workflow_id="w",
                step=0,
                agent_id=f"a{i % 5}",
                arrival_s=t,
                prompt_len=len(blocks) * 32 - rng.randrange(16),
                output_len=rng.randint(1, 200),
                hash_ids=list(blocks),
                block_size=32,
            )
        )
    return records


def _replay(policy: str, fast: bool, records: list[CallRecord]) -> tuple[dict, dict]:
    engine = LLMEngine.from_config(
        EngineConfig(
            backend="sim",
            eviction_policy=policy,
            kv_cache_tokens=2_048,
            host_kv_cache_tokens=4_096,
            max_num_batched_tokens=256,
            max_num_seqs=12,
        )
    )
    engine.batcher.skip_blocked = fast
    options = ReplayOptions(progress=False, per_call=True, fast_forward=fast, max_waiting=8)
    timeline = Timeline()
    result = Replayer(engine, records, options, timeline=timeline).run()
    engine.check_integrity()
    stats = {
        "timeline": timeline.events,
        "steps": engine.stats.steps,
        "clock": engine.clock.now(),
        "pages": sorted(engine.kv.allocator._free_heap),
        "tree": _tree_state(engine),
    }
    return result, stats


def _tree_state(engine: LLMEngine) -> list[tuple]:
    """Every node with its access time as a rank: a skipped admission retry does not
    advance the tree's logical clock, but it must leave the access *order* unchanged."""
    nodes = engine.kv.tree.nodes()
    rank = {t: i for i, t in enumerate(sorted({n.last_access for n in nodes}))}
    return [
        (n.id, n.key, tuple(n.pages), tuple(n.host_pages), n.lock_ref, rank[n.last_access])
        for n in sorted(nodes, key=lambda n: n.id)
    ]


@pytest.mark.parametrize("policy", ["lru", "hicache", "kvflow", "belady"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_paths_replay_exactly_like_the_reference(policy: str, seed: int, monkeypatch):
    records = _records(150, seed)
    # synthetic output tokens depend on request ids: give both runs the same ones
    monkeypatch.setattr(sequence, "_ids", itertools.count())
    ref, ref_state = _replay(policy, False, records)
    monkeypatch.setattr(sequence, "_ids", itertools.count())
    fast, fast_state = _replay(policy, True, records)
    assert ref_state["steps"] > 200 and ref["engine"]["preemptions"] > 0  # under pressure
    assert fast["calls"] == ref["calls"]
    assert fast["kv"] == ref["kv"]
    assert fast["engine"] == ref["engine"]
    assert fast_state == ref_state
    assert {k: v for k, v in fast.items() if k != "calls"} == {
        k: v for k, v in ref.items() if k != "calls"
    }


def test_a_blocked_admission_is_retried_once_the_kv_state_changes():
    kv = KVCacheManager(8, 2, "lru")
    batcher = Batcher(kv, 64, 8)
    held = kv.tree.insert(list(range(12)), kv.allocator.alloc(6)).node
    kv.tree.locks.lock(held)  # 6 of 8 pages pinned by someone else
    seq = Sequence(list(range(100, 110)), SamplingParams(max_tokens=2))
    batcher.add(seq)
    assert not batcher.schedule() and batcher._blocked is not None  # needs 5 pages, 2 free
    version = kv.tree.version
    assert not batcher.schedule() and kv.tree.version == version  # skipped: no lookup
    kv.tree.locks.unlock(held)  # the pinned prefix becomes evictable: the outcome can change
    batch = batcher.schedule()
    assert [item.seq for item in batch.items] == [seq]
    assert seq.status is SequenceStatus.RUNNING
    kv.check_integrity(batcher.running)
