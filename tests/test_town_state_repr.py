"""`TownState.__repr__` (it enters the generative town's state hashes) is exactly the
repr a dataclass generates: class name, then every field as ``name=repr(value)``."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.simulation.town_state import TownState, digest

texts = st.text(max_size=12)
ints = st.integers(-5, 10_000)
states = st.builds(
    TownState,
    pos=st.tuples(ints, ints),
    place=texts,
    activity=texts,
    cooldown=ints,
    talk_to=ints,
    said=texts,
    memory=texts,
    asleep=st.booleans(),
    action_left=ints,
    block=texts,
    actions=ints,
    chat_left=ints,
    seen=st.lists(ints, max_size=4).map(tuple),
    partners=st.lists(ints, max_size=4).map(tuple),
    chat_step=ints,
)


def generated_repr(s: TownState) -> str:
    fields = ", ".join(f"{f.name}={getattr(s, f.name)!r}" for f in dataclasses.fields(s))
    return f"{type(s).__qualname__}({fields})"


@settings(max_examples=200, deadline=None)
@given(s=states)
def test_repr_is_the_generated_one(s: TownState) -> None:
    assert repr(s) == generated_repr(s)


def test_a_state_hash_from_the_generated_repr_is_unchanged() -> None:
    s = TownState((3, 4), "cafe", "busy at cafe", 0, -1, "", "ab12", seen=(1, 2))
    assert digest(7, s) == "c9fc789ac9566944"  # computed with the generated __repr__
