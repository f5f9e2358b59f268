"""Which kind of OpenAI-compatible server is at a URL, and the hints it takes in its words.

`detect(models_body, headers)` reads `GET /v1/models`: `owned_by` is `agentrt`, `vllm` or
`sglang` on those servers; anything else is `generic`. Each kind gets only the fields it
understands (`request_fields`; a generic server may reject unknown ones):

- agentrt: `agent_id`, `workflow_id`, `step_id` (the call id), `parent_step_id` (the
  calls it depends on, comma-separated), `prefix_len` and `priority` per request (its
  `serve.hints`); steps-to-execution through `POST /v1/update` (KVFlow's body); each
  workflow's step graph declared (`POST /v1/workflows`) while it runs, and its agents'
  tool pauses reported (`PATCH /v1/workflows/{id}`, `tool_pauses`);
- sglang: `rid`, `priority`, `session_id` (the workflow: SGLang's stable session
  identity, which unlike `session_params` needs no open session), and `POST /v1/update`
  (KVFlow's fork of SGLang);
- vllm: `request_id` and `session_id` (the workflow). No `priority`: vLLM refuses any
  but 0 unless it was started with priority scheduling, which a client cannot see.
  (vLLM ignores unknown fields, but they would only be noise in its log.)
- generic: nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentrt.engine.call_info import CallInfo
from agentrt.engine.sampling_params import SamplingParams

KINDS = ("auto", "agentrt", "vllm", "sglang", "generic")


def detect(models_body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The server's kind from its model list (and headers, for servers that say)."""
    owners = {str(m.get("owned_by", "")).lower() for m in models_body.get("data", [])}
    for kind in ("agentrt", "vllm", "sglang"):
        if kind in owners or kind in headers.get("server", "").lower():
            return kind
    return "generic"


def request_fields(kind: str, request_id: str, call: CallInfo) -> dict[str, Any]:
    """The body fields that carry `call` (sent as request `request_id`) to a server of
    `kind`; fields the call leaves empty are left out."""
    if kind == "agentrt":
        fields: dict[str, Any] = {
            "agent_id": call.agent_id,
            "workflow_id": call.workflow_id,
            "step_id": call.call_id,
            "parent_step_id": ",".join(call.parent_call_ids) or None,
            "prefix_len": call.prefix_len or None,
            "priority": call.priority,
        }
    elif kind == "sglang":
        fields = {"rid": request_id, "priority": call.priority, "session_id": call.workflow_id}
    elif kind == "vllm":
        fields = {"request_id": request_id, "session_id": call.workflow_id}
    else:
        fields = {}
    return {name: value for name, value in fields.items() if value is not None}


def takes_ste_updates(kind: str) -> bool:
    """Whether the server accepts KVFlow's `POST /v1/update`."""
    return kind in ("agentrt", "sglang")


def takes_workflows(kind: str) -> bool:
    """Whether the server holds declared workflows (`/v1/workflows`)."""
    return kind == "agentrt"


def completion_body(
    kind: str, model: str | None, prompt: list[int], text: str | None, params: SamplingParams
) -> dict[str, Any]:
    """A streamed `/v1/completions` body in `kind`'s words: the prompt as token ids where
    the server takes them (agentrt, vLLM, SGLang), as `text` (the decoded prompt) elsewhere;
    vLLM's sampling extras (which agentrt and SGLang take too) only to those."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(prompt) if kind != "generic" else text,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if kind != "generic":
        if params.top_k:
            body["top_k"] = params.top_k
        if params.ignore_eos:
            body["ignore_eos"] = True
        if params.min_tokens:
            body["min_tokens"] = params.min_tokens
        if params.stop_token_ids:
            body["stop_token_ids"] = list(params.stop_token_ids)
    return body
