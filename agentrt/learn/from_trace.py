"""Learning graphs from a recorded trace, as a server would have seen its calls.

Each `CallRecord` is a request start at `arrival_s` and, when its `latency_s` is
recorded, a finish at `arrival_s + latency_s`; a workflow ends after its last event.
Events are fed in time order (at equal times: finishes, then starts, then ends). A call's
agent is its `agent_id`, else the `AgentKey` of its first `prefix_len` prompt token ids
(when recorded); a call with neither is not learned from. Offline, this gives the
learned graph of a trace for `export_learned` and `to_step_graph` without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agentrt.learn.agent_key import AgentKey
from agentrt.learn.registry import LearnedGraphs

if TYPE_CHECKING:  # the trace package imports numpy; learning needs only the fields
    from agentrt.trace.schema import CallRecord

_FINISH, _START, _END = 0, 1, 2


def learn_from_records(
    records: Iterable[CallRecord],
    graphs: LearnedGraphs | None = None,
    keys: AgentKey | None = None,
) -> LearnedGraphs:
    """Feed `records` to `graphs` (a new registry by default) and return it."""
    graphs = graphs if graphs is not None else LearnedGraphs()
    keys = keys or AgentKey()
    events: list[tuple[float, int, int, str, str]] = []
    last: dict[str, float] = {}
    for seq, record in enumerate(records):
        agent = _agent_of(record, keys)
        if agent is None:
            continue
        events.append((record.arrival_s, _START, seq, record.workflow_id, agent))
        done = record.arrival_s
        if record.latency_s is not None:
            done = record.arrival_s + record.latency_s
            events.append((done, _FINISH, seq, record.workflow_id, agent))
        last[record.workflow_id] = max(last.get(record.workflow_id, done), done)
    events.extend((t, _END, 0, wid, "") for wid, t in last.items())
    for now, what, _, workflow_id, agent in sorted(events):
        if what == _START:
            graphs.start(workflow_id, agent, now)
        elif what == _FINISH:
            graphs.finish(workflow_id, agent, now)
        else:
            graphs.end(workflow_id, now)
    return graphs


def _agent_of(record: CallRecord, keys: AgentKey) -> str | None:
    if record.agent_id:
        return record.agent_id
    if record.prompt_token_ids is not None and record.prefix_len:
        return keys.prefix_key(record.prompt_token_ids[: record.prefix_len])
    return None
