"""Expected steps until each agent's next request, in a learned Markov chain.

The chain: from agent i the next request is agent j with probability `P[i][j]`; what is
left of row i (1 - sum) is the probability that the workflow ends after i. For a source
i and a target t let T be the number of requests until the next request of t (T = 1 when
t follows i directly; a request of t itself as source counts its *next* one). Then

    h_i = P(T <= H)              = sum_j P[i][j] * (1 if j == t else h_j)
    g_i = E[T ; T <= H]          = h_i + sum_{j != t} P[i][j] * g_j

over a horizon of H steps: value iteration from h = g = 0, H rounds at most (stopping
early once nothing changes), so round k holds exactly the paths of at most k steps. The
expected steps-to-execution is E[T | T <= H] = g_i / h_i, rounded to 6 decimals so a
deterministic chain gives whole numbers; it is `math.inf` when h_i < `min_hit_prob`
(t is unreachable, or too unlikely within the horizon to keep its KV for).

Conditioning on reaching t is what makes a loop that may end comparable to a declared
one: in a1 -> a2 -> a3 -> a1 (ending sometimes after a3), a1 is 2 steps from a2 whenever
it comes back at all, as the declared graph's STE says while the loop has runs left.

Cost: O(H * E) per target, O(A * H * E) for the whole table (A agents, E edges).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from agentrt.learn.errors import LearnError

INF = math.inf
_SETTLED = 1e-12


def expected_steps(
    probs: Mapping[str, Mapping[str, float]], *, horizon: int = 64, min_hit_prob: float = 0.05
) -> dict[str, dict[str, float]]:
    """`table[source][target]`: expected steps from a request of `source` to the next
    request of `target`, for every agent named in `probs` (as a row or a column)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise LearnError(f"horizon must be an int >= 1, got {horizon!r}")
    if not 0.0 < min_hit_prob <= 1.0:
        raise LearnError(f"min_hit_prob must be in (0, 1], got {min_hit_prob!r}")
    agents = list(dict.fromkeys([*probs, *(j for row in probs.values() for j in row)]))
    rows = {i: [(j, p) for j, p in probs.get(i, {}).items() if p > 0.0] for i in agents}
    table: dict[str, dict[str, float]] = {i: {} for i in agents}
    for target in agents:
        hit, steps = _hitting(rows, target, horizon)
        for i in agents:
            h = hit[i]
            table[i][target] = round(steps[i] / h, 6) if h >= min_hit_prob else INF
    return table


def _hitting(
    rows: Mapping[str, list[tuple[str, float]]], target: str, horizon: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(h, g) of the module docstring for one target, over every source."""
    hit = dict.fromkeys(rows, 0.0)
    steps = dict.fromkeys(rows, 0.0)
    for _ in range(horizon):
        new_hit: dict[str, float] = {}
        new_steps: dict[str, float] = {}
        for i, row in rows.items():
            h = 0.0
            g = 0.0
            for j, p in row:
                if j == target:
                    h += p
                else:
                    h += p * hit[j]
                    g += p * steps[j]
            new_hit[i] = h
            new_steps[i] = h + g
        settled = all(
            abs(new_hit[i] - hit[i]) <= _SETTLED and abs(new_steps[i] - steps[i]) <= _SETTLED
            for i in rows
        )
        hit, steps = new_hit, new_steps
        if settled:
            break
    return hit, steps
