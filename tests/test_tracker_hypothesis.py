"""Random call DAGs under random interleavings of add/pop/complete/fail/cancel.

Each run drives a `DependencyTracker` and a naive reference model (full scans, no
counters) side by side and requires the same states and the same pop order, plus:
a call is released iff all its deps are done, never twice, and ends in exactly one
terminal state; `check_integrity()` passes after every operation.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentrt.scheduler import CallState, DependencyTracker, UnknownCallError

PENDING, READY, RUNNING = CallState.PENDING, CallState.READY, CallState.RUNNING
DONE, FAILED, CANCELLED = CallState.DONE, CallState.FAILED, CallState.CANCELLED
TERMINAL = {DONE, FAILED, CANCELLED}


class Model:
    """What the tracker should do, computed the slow, obvious way."""

    def __init__(self, priority: str) -> None:
        self.priority = priority
        self.state: dict[int, CallState] = {}
        self.deps: dict[int, tuple[int, ...]] = {}
        self.wf: dict[int, int] = {}
        self.key: dict[int, tuple] = {}
        self.cancel_requested: set[int] = set()
        self.ready: list[int] = []  # in the order calls became ready

    def add(self, cid, deps, wf, step, remaining) -> None:
        self.deps[cid], self.wf[cid], self.state[cid] = deps, wf, PENDING
        rem = math.inf if remaining is None else remaining
        self.key[cid] = {"fifo": (), "earliest_step": (step,), "fewest_remaining": (rem, step)}[
            self.priority
        ]
        blocker = next((d for d in deps if self._blocks(d)), None)
        if blocker is not None:
            self.state[cid] = FAILED if self.state[blocker] is FAILED else CANCELLED
        elif all(self.state[d] is DONE for d in deps):
            self._make_ready(cid)

    def _blocks(self, d: int) -> bool:
        return self.state[d] in (FAILED, CANCELLED) or d in self.cancel_requested

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

    def finish(self, cid: int, ok: bool) -> None:
        if cid in self.cancel_requested:
            self.state[cid] = CANCELLED
            return
        self.state[cid] = DONE if ok else FAILED
        if ok:
            for c in self.state:  # in add order, as the tracker's dependents lists
                if self.state[c] is PENDING and all(self.state[d] is DONE for d in self.deps[c]):
                    self._make_ready(c)
        else:
            self._spread(FAILED)

    def cancel(self, wf: int) -> None:
        for c, s in self.state.items():
            if self.wf[c] == wf and s is RUNNING:
                self.cancel_requested.add(c)
            elif self.wf[c] == wf and s in (PENDING, READY):
                self.state[c] = CANCELLED
                if s is READY:
                    self.ready.remove(c)
        self._spread(CANCELLED)

    def _spread(self, state: CallState) -> None:
        changed = True
        while changed:
            changed = False
            for c, s in self.state.items():
                if s is PENDING and any(self._blocks(d) for d in self.deps[c]):
                    self.state[c], changed = state, True

    def live(self) -> list[int]:
        return [c for c, s in self.state.items() if s not in TERMINAL]


OPS = st.sampled_from(["add", "add", "add", "pop", "complete", "complete", "fail", "cancel"])


def drive(data, priority: str, prune: bool) -> None:
    t = DependencyTracker(priority, prune=prune)
    m = Model(priority)
    released: list[int] = []

    def check() -> None:
        t.check_integrity()
        held = m.live() if prune else list(m.state)
        assert sorted(t._calls) == sorted(held)
        for cid in held:
            assert t.get(cid).state is m.state[cid], cid
            assert t.get(cid).cancel_requested == (cid in m.cancel_requested)
        live = [m.state[c] for c in m.live()]
        assert (t.pending_count, t.ready_count, t.running_count) == (
            live.count(PENDING),
            live.count(READY),
            live.count(RUNNING),
        )
        # Released iff all deps are done: no pending call has all deps done.
        for cid in m.live():
            if m.state[cid] is PENDING:
                assert not all(m.state[d] is DONE for d in m.deps[cid])

    def do_pop(max_n: int | None) -> None:
        got = [c.id for c in t.pop_ready(max_n)]
        assert got == m.pop(max_n)
        for cid in got:
            assert cid not in released, f"{cid} released twice"
            assert all(m.state[d] is DONE for d in m.deps[cid])
            released.append(cid)

    def finish(cid: int, ok: bool) -> None:
        if ok:
            t.complete(cid)
        else:
            failed = [c.id for c in t.fail(cid, ValueError(cid))]
            assert failed[:1] == ([] if cid in m.cancel_requested else [cid])
        before = dict(m.state)
        m.finish(cid, ok)
        if not ok:
            assert set(failed) == {c for c in m.state if m.state[c] is not before[c]} - (
                {cid} if failed == [] else set()
            )

    for _ in range(data.draw(st.integers(5, 60), label="num_ops")):
        op = data.draw(OPS)
        running = [c for c in m.live() if m.state[c] is RUNNING]
        if op == "add":
            cid = len(m.state)
            pool = m.live() if prune else list(m.state)  # pruned ids are unknown
            deps = data.draw(st.lists(st.sampled_from(pool), max_size=3)) if pool else []
            if prune and data.draw(st.booleans()) and len(pool) < len(m.state):
                gone = next(c for c in m.state if c not in pool)
                with pytest.raises(UnknownCallError):
                    t.add(cid, [*deps, gone])
            wf, step = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 4))
            remaining = data.draw(st.none() | st.integers(0, 4))
            t.add(cid, deps, workflow_id=wf, step=step, remaining=remaining)
            m.add(cid, tuple(dict.fromkeys(deps)), wf, step, remaining)
        elif op == "pop":
            do_pop(data.draw(st.none() | st.integers(0, 3)))
        elif op in ("complete", "fail") and running:
            finish(data.draw(st.sampled_from(running)), op == "complete")
        elif op == "cancel":
            wf = data.draw(st.integers(0, 3))
            affected = [c.id for c in t.cancel_workflow(wf)]
            before, requested = dict(m.state), set(m.cancel_requested)
            m.cancel(wf)
            changed = {c for c in m.state if m.state[c] is not before[c]}
            assert len(affected) == len(set(affected))
            assert set(affected) == changed | (m.cancel_requested - requested)
        check()

    # Drain: everything still live finishes.
    while m.live():
        do_pop(None)
        for cid in [c for c in m.live() if m.state[c] is RUNNING]:
            finish(cid, True)
        check()
    assert len(released) == len(set(released))
    assert all(s in TERMINAL for s in m.state.values())
    assert (len(t) == 0) if prune else (len(t) == len(m.state))
    # Release order respects deps: each dep finished before its dependent was released.
    pos = {c: i for i, c in enumerate(released)}
    for cid in released:
        for d in m.deps[cid]:
            assert pos[d] < pos[cid]


@pytest.mark.parametrize("prune", [False, True], ids=["keep", "prune"])
@pytest.mark.parametrize("priority", ["fifo", "earliest_step", "fewest_remaining"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_tracker_matches_reference_model(data, priority, prune):
    drive(data, priority, prune)
