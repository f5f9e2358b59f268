"""Brute-force O(N^2) check of a `SpatialTracker`'s incremental state (tests only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentrt.scheduler.spatial_index import chebyshev

if TYPE_CHECKING:
    from agentrt.scheduler.spatial_tracker import SpatialTracker


def brute_force_blockers(
    positions: list, steps: list[int], radius: float, speed: float, agent: int
) -> set[int]:
    """Agents behind ``agent`` within ``R + (a - b + 1) * V`` of it."""
    a, p = steps[agent], positions[agent]
    return {
        j
        for j, (b, q) in enumerate(zip(steps, positions, strict=True))
        if b < a and chebyshev(p, q) <= radius + (a - b + 1) * speed
    }


def check_spatial_tracker(t: SpatialTracker) -> None:
    n, R, V = len(t._step), t.radius, t.speed
    live = [i for i in range(n) if t._step[i] < t.max_step]
    idle = [i for i in live if not t._running[i]]
    for i in idle:
        want = brute_force_blockers(t._pos, t._step, R, V, i)
        want = {j for j in want if t._step[j] < t.max_step}
        assert t._blockers[i] == want, f"agent {i}: blockers {t._blockers[i]} != {want}"
        for j in want:
            assert i in t._blocks[j], f"agent {j} does not record blocking {i}"
    for j in range(n):
        for i in t._blocks[j]:
            assert j in t._blockers[i], f"stale block {j} -> {i}"
    # coupled clusters: connected components of idle same-step agents within R + V
    seen: set[int] = set()
    for i in idle:
        if i in seen:
            continue
        comp, stack = {i}, [i]
        while stack:
            k = stack.pop()
            for j in idle:
                if (
                    j not in comp
                    and t._step[j] == t._step[k]
                    and chebyshev(t._pos[j], t._pos[k]) <= R + V
                ):
                    comp.add(j)
                    stack.append(j)
        seen |= comp
        c = t._cluster[i]
        assert c is not None and c.alive, f"idle agent {i} has no live cluster"
        assert set(c.members) == comp, f"cluster of {i}: {sorted(c.members)} != {sorted(comp)}"
        nblocked = sum(1 for k in comp if t._blockers[k])
        assert c.nblocked == nblocked, f"cluster of {i}: nblocked {c.nblocked} != {nblocked}"
        assert (id(c) in t._ready) == (nblocked == 0), f"cluster of {i}: readiness is off"
    for i in live:
        if t._running[i]:
            for j in idle:
                same = t._step[j] == t._step[i]
                assert not (same and chebyshev(t._pos[i], t._pos[j]) <= R + V), (
                    f"running agent {i} is coupled with idle agent {j}"
                )
    assert t._finished == n - len(live), "finished count is off"
