"""Random call DAGs under random interleavings of add/pop/complete.

Each run drives a `DependencyTracker` and a naive reference model (full scans, no
counters) side by side and requires the same states and the same pop order, plus:
a call is released iff all its deps are done, never twice, and is dropped once done;
`check_integrity()` passes after every operation.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentrt.scheduler import CallState, DependencyTracker, UnknownCallError

PENDING, READY, RUNNING, DONE = (
    CallState.PENDING,
    CallState.READY,
    CallState.RUNNING,
    CallState.DONE,
)


class Model:
    """What the tracker should do, computed the slow, obvious way."""

    def __init__(self, priority: str) -> None:
        self.priority = priority
        self.state: dict[int, CallState] = {}
        self.deps: dict[int, tuple[int, ...]] = {}
        self.key: dict[int, tuple] = {}
        self.ready: list[int] = []  # in the order calls became ready

    def add(self, cid, deps, step, remaining) -> None:
        self.deps[cid], self.state[cid] = deps, PENDING
        rem = math.inf if remaining is None else remaining
        self.key[cid] = {"fifo": (), "earliest_step": (step,), "fewest_remaining": (rem, step)}[
            self.priority
        ]
        if not deps:
            self._make_ready(cid)

    def _make_ready(self, cid: int) -> None:
        self.state[cid] = READY
        self.ready.append(cid)

    def pop(self, max_n: int | None) -> list[int]:
        order = sorted(self.ready, key=lambda c: self.key[c])  # stable: ties stay FIFO
        out = order if max_n is None else order[:max_n]
        for cid in out:
            self.state[cid] = RUNNING
            self.ready.remove(cid)
        return out

    def complete(self, cid: int) -> None:
        self.state[cid] = DONE
        for c in self.state:  # in add order, as the tracker's dependents lists
            if self.state[c] is PENDING and all(self.state[d] is DONE for d in self.deps[c]):
                self._make_ready(c)

    def live(self) -> list[int]:
        return [c for c, s in self.state.items() if s is not DONE]


OPS = st.sampled_from(["add", "add", "add", "pop", "complete", "complete"])


def drive(data, priority: str) -> None:
    t = DependencyTracker(priority)
    m = Model(priority)
    released: list[int] = []

    def check() -> None:
        t.check_integrity()
        live = m.live()
        assert sorted(t._calls) == sorted(live)
        for cid in live:
            assert t.get(cid).state is m.state[cid], cid
        states = [m.state[c] for c in live]
        assert (t.pending_count, t.ready_count, t.running_count) == (
            states.count(PENDING),
            states.count(READY),
            states.count(RUNNING),
        )
        # Released iff all deps are done: no pending call has all deps done.
        for cid in live:
            if m.state[cid] is PENDING:
                assert not all(m.state[d] is DONE for d in m.deps[cid])

    def do_pop(max_n: int | None) -> None:
        got = [c.id for c in t.pop_ready(max_n)]
        assert got == m.pop(max_n)
        for cid in got:
            assert cid not in released, f"{cid} released twice"
            assert all(m.state[d] is DONE for d in m.deps[cid])
            released.append(cid)

    for _ in range(data.draw(st.integers(5, 60), label="num_ops")):
        op = data.draw(OPS)
        running = [c for c in m.live() if m.state[c] is RUNNING]
        if op == "add":
            cid = len(m.state)
            pool = m.live()  # done ids are unknown
            deps = data.draw(st.lists(st.sampled_from(pool), max_size=3)) if pool else []
            if data.draw(st.booleans()) and len(pool) < len(m.state):
                gone = next(c for c in m.state if c not in pool)
                with pytest.raises(UnknownCallError):
                    t.add(cid, [*deps, gone])
            step = data.draw(st.integers(0, 4))
            remaining = data.draw(st.none() | st.integers(0, 4))
            t.add(cid, deps, step=step, remaining=remaining)
            m.add(cid, tuple(dict.fromkeys(deps)), step, remaining)
        elif op == "pop":
            do_pop(data.draw(st.none() | st.integers(0, 3)))
        elif op == "complete" and running:
            cid = data.draw(st.sampled_from(running))
            t.complete(cid)
            m.complete(cid)
        check()

    # Drain: everything still live finishes.
    while m.live():
        do_pop(None)
        for cid in [c for c in m.live() if m.state[c] is RUNNING]:
            t.complete(cid)
            m.complete(cid)
        check()
    assert len(released) == len(m.state) and t.live_count == 0
    # Release order respects deps: each dep finished before its dependent was released.
    pos = {c: i for i, c in enumerate(released)}
    for cid in released:
        for d in m.deps[cid]:
            assert pos[d] < pos[cid]


@pytest.mark.parametrize("priority", ["fifo", "earliest_step", "fewest_remaining"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tracker_matches_reference_model(data, priority):
    drive(data, priority)
