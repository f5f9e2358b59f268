"""Which kind of OpenAI-compatible server is at a URL, and the hints it takes in its words.

`detect(models_body, headers)` reads `GET /v1/models`: `owned_by` is `agentrt`, `vllm` or
`sglang` on those servers; anything else is `generic`. Each kind gets only the fields it
understands (a generic server may reject unknown ones):

- agentrt: `agent_id`, `workflow_id`, `prefix_len`, `priority` per request, and
  steps-to-execution through `POST /v1/update` (KVFlow's body);
- sglang: `rid`, `priority`, and `POST /v1/update` (KVFlow's fork of SGLang);
- vllm: `request_id`, and `priority` only when not 0 (vLLM refuses it without priority
  scheduling);
- generic: nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("auto", "agentrt", "vllm", "sglang", "generic")


@dataclass(frozen=True)
class CallHints:
    request_id: str
    agent_id: str
    workflow_id: str | None = None
    prefix_len: int | None = None
    priority: int = 0


def detect(models_body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The server's kind from its model list (and headers, for servers that say)."""
    owners = {str(m.get("owned_by", "")).lower() for m in models_body.get("data", [])}
    for kind in ("agentrt", "vllm", "sglang"):
        if kind in owners or kind in headers.get("server", "").lower():
            return kind
    return "generic"


def request_fields(kind: str, hints: CallHints) -> dict[str, Any]:
    """The body fields that carry `hints` to a server of `kind`."""
    if kind == "agentrt":
        fields: dict[str, Any] = {"agent_id": hints.agent_id}
        if hints.workflow_id is not None:
            fields["workflow_id"] = hints.workflow_id
        if hints.prefix_len:
            fields["prefix_len"] = hints.prefix_len
        if hints.priority:
            fields["priority"] = hints.priority
        return fields
    if kind == "sglang":
        return {"rid": hints.request_id, "priority": hints.priority}
    if kind == "vllm":
        fields = {"request_id": hints.request_id}
        if hints.priority:
            fields["priority"] = hints.priority
        return fields
    return {}


def takes_ste_updates(kind: str) -> bool:
    """Whether the server accepts KVFlow's `POST /v1/update`."""
    return kind in ("agentrt", "sglang")
