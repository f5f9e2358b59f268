"""`AgentKey`: agent keys from hints or chained prefix-block hashes; workflow kinds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.learn import AgentKey, LearnError

IDS = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(ids=IDS, block=st.integers(1, 20))
def test_a_key_is_stable_and_names_the_whole_prefix(ids, block):
    keys = AgentKey(block)
    assert keys.of(prefix_ids=ids) == AgentKey(block).of(prefix_ids=list(ids))
    assert keys.of(prefix_ids=ids).startswith("prefix:")
    changed = list(ids)
    changed[-1] = (changed[-1] + 1) % 2**32
    assert keys.of(prefix_ids=changed) != keys.of(prefix_ids=ids)
    assert keys.of(prefix_ids=[*ids, 7]) != keys.of(prefix_ids=ids)


@settings(max_examples=200, deadline=None)
@given(a=IDS, b=IDS, block=st.integers(1, 8))
def test_block_digests_agree_exactly_on_shared_whole_blocks(a, b, block):
    keys = AgentKey(block)
    da, db = keys.block_hashes(a), keys.block_hashes(b)
    assert len(da) == -(-len(a) // block)
    for k in range(min(len(da), len(db))):
        same_tokens = a[: (k + 1) * block] == b[: (k + 1) * block]
        assert (da[k] == db[k]) == same_tokens


def test_known_values_pin_the_hash_across_runs_and_versions():
    # a change of the hash would orphan every exported learned graph
    assert AgentKey(16).of(prefix_ids=range(40)) == "prefix:0b04ca8dc174554f"
    assert AgentKey(4).of(prefix_ids=[1, 2, 3, 4, 5]) == "prefix:09b45e2548917e40"


def test_a_hint_wins_and_an_empty_prefix_has_no_key():
    keys = AgentKey()
    assert keys.of("planner", [1, 2, 3]) == "planner"
    assert keys.of(prefix_ids=[]) is None
    assert keys.of() is None


def test_the_kind_is_the_hint_else_the_first_agent():
    assert AgentKey.kind_of("travel", "prefix:00") == "travel"
    assert AgentKey.kind_of(None, "prefix:00") == "prefix:00"


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.of(prefix_ids=[1, -2]),
        lambda k: k.of(prefix_ids=[1, 2**32]),
        lambda k: k.of(prefix_ids=[1.5]),
        lambda k: k.of(prefix_ids="abc"),
        lambda k: k.of(hint=""),
        lambda k: k.of(hint=3),
        lambda k: k.kind_of("", "a"),
        lambda k: AgentKey(0),
    ],
)
def test_bad_input_is_a_one_line_error(call):
    with pytest.raises(LearnError) as info:
        call(AgentKey())
    assert "\n" not in str(info.value)
