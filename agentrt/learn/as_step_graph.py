"""A learned graph as a declared `StepGraph`, for replaying it offline.

The learned chain keeps the transitions with probability >= `min_probability` and the
agents reachable through them from the agents that started a workflow. A depth-first walk
from those start agents (most frequent first; successors likewise, ties by name) sorts
the kept transitions: one that closes a cycle (its target is on the walk's current path)
becomes a bounded back edge, with `max_iterations` = the most times one workflow took it;
the others are forward edges, which therefore form a DAG whose entry agents are start
agents. Every agent is an OR-join: in the learned chain any one predecessor leads on.

What does not carry over: a StepGraph runs all successors of a finished agent (the
learned chain picks one), and starts every entry agent (the chain picks one start).
So the conversion is meaningful for chains, loops and single-start shapes. A kind with
no start agent has no graph (`LearnError`).
"""

from __future__ import annotations

from agentrt.graph.step_graph import StepGraph
from agentrt.learn.errors import LearnError
from agentrt.learn.transitions import TransitionLearner


def to_step_graph(learner: TransitionLearner, *, min_probability: float = 0.1) -> StepGraph:
    """The `StepGraph` of one learned kind (agents named by their keys)."""
    if not 0.0 < min_probability <= 1.0:
        raise LearnError(f"min_probability must be in (0, 1], got {min_probability!r}")
    if not learner.starts:
        raise LearnError(f"learned kind {learner.kind!r} has no start agent: no step graph")
    probs = learner.probabilities()
    kept = {
        src: sorted(
            (dst for dst, p in row.items() if p >= min_probability),
            key=lambda dst, src=src: (-learner.edges[src][dst].count, dst),
        )
        for src, row in probs.items()
    }
    roots = sorted(learner.starts, key=lambda a: (-learner.starts[a], a))
    order, forward, back = _classify(roots, kept)
    graph = StepGraph()
    for agent in order:
        graph.add_agent(agent, join="or")
    for src, dst in forward:
        graph.add_edge(src, dst)
    for src, dst in back:
        graph.add_edge(src, dst, max(1, learner.edges[src][dst].max_per_workflow))
    return graph.validate()


def _classify(
    roots: list[str], kept: dict[str, list[str]]
) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """Depth-first walk (iterative): visited agents in order, forward and back edges."""
    order: list[str] = []
    forward: list[tuple[str, str]] = []
    back: list[tuple[str, str]] = []
    on_path: set[str] = set()
    seen: set[str] = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        order.append(root)
        on_path.add(root)
        stack = [(root, iter(kept.get(root, [])))]
        while stack:
            node, successors = stack[-1]
            nxt = next(successors, None)
            if nxt is None:
                on_path.discard(node)
                stack.pop()
            elif nxt in on_path:
                back.append((node, nxt))
            else:
                forward.append((node, nxt))
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
                    on_path.add(nxt)
                    stack.append((nxt, iter(kept.get(nxt, []))))
    return order, forward, back
