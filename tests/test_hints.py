"""`HintBoard`: the minimum STE per agent over live workflows, kept incrementally."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.scheduler.hints import HintBoard

STE_MAPS = st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3) | st.just(float("inf")))
OPS = st.lists(st.tuples(st.integers(0, 4), st.none() | STE_MAPS), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_agent_ste_is_the_minimum_over_live_workflows(ops):
    board, live = HintBoard(), {}
    for workflow, ste in ops:
        if ste is None:
            if workflow not in live:
                continue
            board.end(workflow)
            del live[workflow]
        else:
            board.publish(workflow, ste)
            live[workflow] = ste
        want: dict[str, float] = {}
        for values in live.values():
            for agent, value in values.items():
                want[agent] = min(want.get(agent, value), value)
        assert board.agent_ste() == want
