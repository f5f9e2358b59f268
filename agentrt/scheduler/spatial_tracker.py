"""Out-of-order scheduling of simulation agents by spatio-temporal rules (AI Metropolis).

Agent ``i`` *at step s* has finished steps ``0 .. s-1``; its step s reads the world
around its position at step s. With perception radius ``R`` and top speed ``V`` per step
(Chebyshev metric, see `spatial_index`):

- **Conflict**: A at step ``a`` waits for every B at step ``b < a`` with
  ``dist(A, B) <= R + (a - b + 1) * V``. Blockers are found when A arrives at step ``a``
  and only shrink afterwards (B's reach shrinks by ``V`` per step, it moves at most ``V``).
- **Coupling**: idle agents at the same step within ``R + V`` of each other form one
  cluster (union by size as agents arrive), a scheduling unit that is ready when none of
  its members has a blocker; a ready or running cluster never gains members.
- **Run-ahead**: nothing else holds an agent back.

An arrival queries a uniform grid per live step (cell ``R + V``): ~O(N log N) per
simulated step, never O(N^2). `check_integrity` recomputes everything by brute force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agentrt.scheduler.spatial_index import GridIndex, Pos, chebyshev

_EPS = 1e-9
LIVE_CELLS = 4  # cell side of the index of all live agents, in units of R + V


@dataclass(eq=False)
class _Cluster:
    step: int
    members: list[int] = field(default_factory=list)
    nblocked: int = 0  # members with at least one blocker
    alive: bool = True  # False once merged into another cluster or started


class SpatialTracker:
    """The ``ooo`` mode: releases coupled clusters as soon as the rules allow.

    ``positions[i]`` is agent ``i``'s position at ``start_step`` (all agents start there);
    agents finish at ``max_step``. Drive it with `ready_units` / `start` / `finish`.
    ``finish`` raises `ValueError` if an agent moved more than ``speed``: the rules are
    only sound for worlds that respect the speed limit.
    """

    name = "ooo"

    def __init__(
        self,
        positions: Sequence[Pos],
        radius: float,
        speed: float,
        max_step: int,
        start_step: int = 0,
    ) -> None:
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        if max_step < start_step:
            raise ValueError(f"max_step {max_step} is before start_step {start_step}")
        self.radius = float(radius)
        self.speed = float(speed)
        self.max_step = max_step
        n = len(positions)
        self._pos: list[Pos] = [tuple(p) for p in positions]  # type: ignore[misc]
        self._step = [start_step] * n
        self._running = [False] * n
        self._cell = max(self.radius + self.speed, 1.0)
        self._grids: dict[int, GridIndex] = {}  # step -> the agents at that step
        # every unfinished agent, whatever its step: one query finds the blockers at all
        # older steps (a query per older step costs more once agents spread over many)
        self._live = GridIndex(self._cell * LIVE_CELLS)
        self._blockers: list[set[int]] = [set() for _ in range(n)]
        self._blocks: list[set[int]] = [set() for _ in range(n)]
        self._cluster: list[_Cluster | None] = [None] * n
        self._ready: dict[int, _Cluster] = {}
        self._finished = 0
        self._mark_ready([c for c in (self._arrive(i) for i in range(n)) if c is not None])

    def step_of(self, agent: int) -> int:
        return self._step[agent]

    def position(self, agent: int) -> Pos:
        return self._pos[agent]

    def blockers(self, agent: int) -> set[int]:
        """Agents behind ``agent`` that it must wait for (a copy)."""
        return set(self._blockers[agent])

    def done(self) -> bool:
        return self._finished == len(self._step)

    def ready_units(self) -> list[list[int]]:
        """Clusters that may run their next step now (sorted members), oldest ready first."""
        return [sorted(c.members) for c in self._ready.values()]

    def start(self, unit: Sequence[int]) -> None:
        """Start a unit returned by `ready_units`: its agents are running their step."""
        c = self._cluster[unit[0]] if unit else None
        if c is None or id(c) not in self._ready or sorted(unit) != sorted(c.members):
            raise ValueError(f"{list(unit)} is not a ready unit")
        del self._ready[id(c)]
        c.alive = False
        for i in unit:
            self._running[i] = True
            self._cluster[i] = None

    def finish(self, unit: Sequence[int], new_positions: Sequence[Pos]) -> None:
        """The unit's agents finished their step and now stand at ``new_positions``."""
        if len(unit) != len(new_positions):
            raise ValueError("one new position per agent of the unit")
        for i in unit:
            if not self._running[i]:
                raise ValueError(f"agent {i} is not running")
        for i, new in zip(unit, new_positions, strict=True):
            old, s = self._pos[i], self._step[i]
            if chebyshev(old, new) > self.speed + _EPS:
                raise ValueError(
                    f"agent {i} moved {chebyshev(old, new)} > speed {self.speed} at step {s}"
                )
            grid = self._grids[s]
            grid.remove(i)
            if not len(grid):
                del self._grids[s]
            self._live.remove(i)
            self._running[i] = False
            self._pos[i] = tuple(new)  # type: ignore[assignment]
            self._step[i] = s + 1
        touched = [c for c in (self._arrive(i) for i in unit) if c is not None]
        for i in unit:
            self._release_blocked(i, touched)
        self._mark_ready(touched)

    def _arrive(self, i: int) -> _Cluster | None:
        """Index agent ``i`` at its (new) step; find its blockers and couple it."""
        s = self._step[i]
        if s >= self.max_step:
            self._finished += 1
            return None
        pos, R, V = self._pos[i], self.radius, self.speed
        blockers = self._blockers[i]
        behind = min(self._grids, default=s)  # the lowest step any agent is at
        if behind < s:  # blockers: at b < s within R + (s - b + 1) * V (largest at `behind`)
            steps, blocks, x, y = self._step, self._blocks, pos[0], pos[1]
            for j, p in self._live.query(pos, R + (s - behind + 1) * V):
                b = steps[j]
                if b < s:
                    r = R + (s - b + 1) * V
                    if abs(p[0] - x) <= r and abs(p[1] - y) <= r:
                        blockers.add(j)
                        blocks[j].add(i)
        grid = self._grids.get(s)
        if grid is None:
            grid = self._grids[s] = GridIndex(self._cell)
        cluster = _Cluster(s, [i], 1 if blockers else 0)
        self._cluster[i] = cluster
        for j, _ in grid.query(pos, R + V):
            other = self._cluster[j]
            if self._running[j] or other is None or id(other) in self._ready:
                raise AssertionError(
                    f"agent {i} arrived at step {s} within R+V of agent {j}, which is "
                    "already released: the dependency rules were violated"
                )
            if other is not cluster:
                cluster = self._merge(cluster, other)
        grid.insert(i, pos)
        self._live.insert(i, pos)
        return cluster

    def _merge(self, a: _Cluster, b: _Cluster) -> _Cluster:
        if len(a.members) < len(b.members):
            a, b = b, a
        for j in b.members:
            self._cluster[j] = a
        a.members.extend(b.members)
        a.nblocked += b.nblocked
        b.alive = False
        return a

    def _release_blocked(self, i: int, touched: list[_Cluster]) -> None:
        """Agent ``i`` advanced: drop it from the blockers of agents it no longer blocks."""
        s, pos, R, V = self._step[i], self._pos[i], self.radius, self.speed
        blocks = self._blocks[i]
        freed = [
            a
            for a in blocks
            if s >= self._step[a] or chebyshev(pos, self._pos[a]) > R + (self._step[a] - s + 1) * V
        ]
        for a in freed:
            blocks.discard(a)
            blockers = self._blockers[a]
            blockers.discard(i)
            if not blockers:
                c = self._cluster[a]
                assert c is not None, "a blocked agent is idle"
                c.nblocked -= 1
                touched.append(c)

    def _mark_ready(self, clusters: list[_Cluster]) -> None:
        for c in clusters:
            if c.alive and not c.nblocked and id(c) not in self._ready:
                self._ready[id(c)] = c

    def check_integrity(self) -> None:
        """Recompute blockers, clusters and readiness by brute force; `AssertionError` if off."""
        from agentrt.scheduler.spatial_integrity import check_spatial_tracker

        check_spatial_tracker(self)
