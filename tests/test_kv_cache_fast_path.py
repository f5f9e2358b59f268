"""`KVCacheManager.cache` inserts only the pages past the sequence's node
(`RadixTree.insert_below`), finds the agent's prefix node walking up from the end
(`touch_prefix` with the known depth) and rebuilds an agent's prefix tuple only when its
node changed. Under random sequences (prefill in chunks, decode, finish, evictions from a
small pool, agents whose prefix changes) it leaves everything as the plain version does:
an insert from the root, `match_prefix` for the tag, the tuple stored on every call
(`reference.PlainCacheManager`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.kvmanager import KVCacheManager
from agentrt.kvmanager.reference import PlainCacheManager


@dataclass(eq=False)
class Seq:
    request_id: str
    agent_id: str | None
    prefix_len: int | None
    token_ids: list[int]
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    num_tree_pages: int = 0
    tree_node: object = None
    num_preemptions: int = 0


PS = 2
PREFIXES = {"a": ([1, 2, 3, 4], [1, 2, 5, 5, 6]), "b": ([1, 2, 7, 7], [8, 8, 8, 8])}

NEW = st.tuples(
    st.just("new"),
    st.sampled_from([None, "a", "b"]),
    st.integers(0, 1),  # which prefix of the agent
    st.lists(st.integers(0, 3), min_size=1, max_size=7),  # the suffix tokens
    st.integers(1, 12),  # the first prefill chunk
)
STEP = st.tuples(st.just("step"), st.integers(0, 9), st.integers(1, 5), st.integers(0, 3))
FINISH = st.tuples(st.just("finish"), st.integers(0, 9), st.just(0), st.just(0))
OPS = st.lists(st.one_of(NEW, STEP, STEP, FINISH), max_size=40)


def run(kv: KVCacheManager, ops: list[tuple]) -> list[object]:
    """Apply ``ops``; returns what is compared after each one."""
    running: list[Seq] = []
    seen: list[object] = []
    for i, op in enumerate(ops):
        name = op[0]
        if name == "new":
            _, agent, which, suffix, chunk = op
            prefix = PREFIXES[agent][which] if agent else []
            seq = Seq(f"r{i}", agent, len(prefix) or None, prefix + suffix)
            kv.match(seq)
            n = min(chunk, len(seq.token_ids) - seq.num_computed_tokens)
            if kv.allocate(seq, n):  # admitted: its first chunk is computed
                running.append(seq)
                seq.num_computed_tokens += n
                if n > 1:
                    kv.cache(seq)
            else:
                kv.unmatch(seq)
        elif running:
            seq = running[op[1] % len(running)]
            if name == "finish":
                kv.cache(seq)
                kv.release(seq)
                running.remove(seq)
            else:  # a prefill chunk of up to op[2] tokens, or one decode step
                _, _, chunk, token = op
                n = min(chunk, len(seq.token_ids) - seq.num_computed_tokens) or 1
                if n == 1 and seq.num_computed_tokens == len(seq.token_ids):
                    seq.token_ids.append(token)  # decoding: the sampled token goes in
                if kv.allocate(seq, n):
                    seq.num_computed_tokens += n
                    if n > 1:
                        kv.cache(seq)
        kv.check_integrity(running)
        seen.append(
            (
                kv.tree.pretty(),
                sorted(kv.allocator._free_heap),
                dict(kv.agent_prefixes),
                [(s.block_table, s.num_tree_pages, s.num_computed_tokens) for s in running],
                kv.stats,
            )
        )
    return seen


@settings(max_examples=300, deadline=None)
@given(num_pages=st.integers(4, 24), min_evict=st.integers(0, 4), ops=OPS)
def test_cache_fast_path_equals_the_plain_insert(num_pages, min_evict, ops):
    fast = KVCacheManager(num_pages, PS)
    slow = PlainCacheManager(num_pages, PS)
    fast.min_evict_pages = slow.min_evict_pages = min_evict
    for a, b in zip(run(fast, ops), run(slow, ops), strict=True):
        assert a == b
