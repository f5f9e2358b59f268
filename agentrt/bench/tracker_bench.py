"""Benchmark of the dependency tracker alone: releases per second on a random call DAG.

Every call of the DAG is added up front (``add_per_s``), then execution is simulated: pop
every ready call, complete them in random order, repeat. Only time inside tracker
operations counts. ``releases_per_s``: calls handed out by ``pop_ready`` per second spent
in ``pop_ready`` + ``complete``; ``overhead_us_per_call``: all tracker time per call.
"""

from __future__ import annotations

import random
import time
from typing import Any

from tqdm import tqdm

from agentrt.scheduler.tracker import DependencyTracker


def random_dag(
    num_calls: int, max_deps: int, rng: random.Random
) -> list[tuple[int, tuple[int, ...], int, int]]:
    """``(call_id, deps, workflow_id, step)`` rows, each dep an earlier row of its workflow
    (workflows of 8 to 64 calls)."""
    rows: list[tuple[int, tuple[int, ...], int, int]] = []
    step_of: dict[int, int] = {}
    wf = 0
    while len(rows) < num_calls:
        size = min(rng.randint(8, 64), num_calls - len(rows))
        members: list[int] = []
        for _ in range(size):
            call_id = len(rows)
            k = min(rng.randint(0, max_deps), len(members))
            # Mostly recent calls, as agent steps tend to be: a window over the tail.
            deps = tuple(rng.sample(members[-8:], k)) if k else ()
            step = 1 + max((step_of[d] for d in deps), default=-1)
            step_of[call_id] = step
            rows.append((call_id, deps, wf, step))
            members.append(call_id)
        wf += 1
    return rows


def bench_tracker(num_calls: int = 100_000, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark (fifo priority, up to 3 deps per call); returns ``num_calls``,
    ``releases_per_s``, ``overhead_us_per_call``, ``add_per_s`` (see the module docstring)
    plus ``priority``, ``num_workflows``, ``rounds`` and ``seconds`` (tracker time)."""
    rng = random.Random(0)
    rows = random_dag(num_calls, 3, rng)
    tracker = DependencyTracker("fifo")
    perf = time.perf_counter
    add = tracker.add

    t0 = perf()
    for call_id, deps, _, step in rows:
        add(call_id, deps, step=step)
    add_s = perf() - t0

    bar = tqdm(total=num_calls, desc="tracker", unit="call", leave=False, disable=not progress)
    run_s = 0.0
    released = rounds = 0
    complete = tracker.complete
    while tracker.live_count:
        t0 = perf()
        batch = tracker.pop_ready()
        run_s += perf() - t0
        if not batch:
            raise RuntimeError("tracker stalled with live calls and nothing ready")
        ids = [c.id for c in batch]
        rng.shuffle(ids)
        t0 = perf()
        for call_id in ids:
            complete(call_id)
        run_s += perf() - t0
        released += len(ids)
        rounds += 1
        bar.update(len(ids))
    bar.close()
    if released != num_calls:
        raise RuntimeError(f"released {released} of {num_calls} calls")
    return {
        "num_calls": num_calls,
        "releases_per_s": released / run_s if run_s else float("inf"),
        "overhead_us_per_call": (add_s + run_s) / num_calls * 1e6,
        "add_per_s": num_calls / add_s if add_s else float("inf"),
        "priority": "fifo",
        "num_workflows": rows[-1][2] + 1 if rows else 0,
        "rounds": rounds,
        "seconds": add_s + run_s,
    }
