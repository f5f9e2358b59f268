"""`CallInfo`: who makes a model call, as every model client takes it.

The runtime fills it for each `ctx.gen`; `AsyncLLM` reads the fields its engine uses
(`agent_id`, `prefix_len`, `priority`), a remote backend sends each server kind the
fields it understands (`agentrt.remote.server_kind`). Torch-free, so both the
bookkeeping side and the engines import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallInfo:
    """- `agent_id`: the agent the call belongs to (its KV prefix is tagged with it);
    - `prefix_len`: how many leading prompt tokens are the agent's fixed prefix;
    - `workflow_id`: the workflow instance that makes the call;
    - `call_id`: this call's id, unique within its runtime;
    - `parent_call_ids`: the calls it depends on (its agent's frontier);
    - `priority`: lower runs earlier (vLLM's convention); 0 is the default.
    All optional: an empty `CallInfo()` is an anonymous call."""

    agent_id: str | None = None
    prefix_len: int | None = None
    workflow_id: str | None = None
    call_id: str | None = None
    parent_call_ids: tuple[str, ...] = ()
    priority: int = 0
