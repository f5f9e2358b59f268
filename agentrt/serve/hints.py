"""Request hints: who is asking (workflow, agent, step) and how urgent, all optional and soft.

A hint never makes a request fail. Each one given is accepted, clipped to its range or
ignored (with why), and the response's `x_agentrt.hint_outcome` says which, per field.

Where they come from, first found wins:

- top-level body fields (what the `openai` client's `extra_body` sends): `workflow_id`,
  `agent_id`, `step_id`, `parent_step_id`, `priority` (lower = earlier, vLLM's
  convention), `is_last_step`;
- the names other systems use for the same thing: `session_id` and `program_id`
  (workflow), Continuum's `job_id` (workflow) and `is_last_step`;
- NVIDIA Dynamo's `nvext`: `nvext.agent_context` (`workflow_id`, `session_id`,
  `agent_id`) and `nvext.agent_hints.priority` (its other hints are for a router, and are
  reported as ignored);
- headers `X-Workflow-Id` and `X-Agent-Id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ID_CHARS = 256
PRIORITY_RANGE = (-1000, 1000)

# canonical field -> the body keys read for it, in order
ID_SOURCES: dict[str, tuple[str, ...]] = {
    "workflow_id": ("workflow_id", "session_id", "program_id", "job_id"),
    "agent_id": ("agent_id",),
    "step_id": ("step_id",),
    "parent_step_id": ("parent_step_id",),
}
HEADERS = {"workflow_id": "x-workflow-id", "agent_id": "x-agent-id"}
NVEXT_CONTEXT = {"workflow_id": ("workflow_id", "session_id"), "agent_id": ("agent_id",)}


@dataclass
class RequestHints:
    workflow_id: str | None = None
    agent_id: str | None = None
    step_id: str | None = None
    parent_step_id: str | None = None
    priority: int = 0
    is_last_step: bool = False
    outcome: dict[str, str] = field(default_factory=dict)

    @property
    def given(self) -> bool:
        return bool(self.outcome)


def _as_id(value: Any) -> tuple[str | None, str]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, "ignored: not a string"
    text = str(value)
    if not text:
        return None, "ignored: empty"
    if len(text) > MAX_ID_CHARS:
        return None, f"ignored: longer than {MAX_ID_CHARS} characters"
    return text, "accepted"


def _as_priority(value: Any) -> tuple[int | None, str]:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None, "ignored: not a number"
    low, high = PRIORITY_RANGE
    clipped = int(min(max(value, low), high))
    if clipped != value:
        return clipped, f"clipped to {clipped}"
    return clipped, "accepted"


def _first(sources: list[tuple[str, Mapping[str, Any], tuple[str, ...]]]):
    """The first (name, value) present, trying each source's keys in order."""
    for prefix, source, keys in sources:
        for key in keys:
            if key in source and source[key] is not None:
                return prefix + key, source[key]
    return None, None


def read_hints(extra: Mapping[str, Any] | None, headers: Mapping[str, str]) -> RequestHints:
    """The hints of a request: `extra` is its body's fields the OpenAI schema does not
    have, `headers` its HTTP headers (lower-case names)."""
    extra = extra or {}
    hints = RequestHints()
    nvext = extra.get("nvext")
    nvext = nvext if isinstance(nvext, Mapping) else {}
    context = nvext.get("agent_context")
    context = context if isinstance(context, Mapping) else {}
    agent_hints = nvext.get("agent_hints")
    agent_hints = agent_hints if isinstance(agent_hints, Mapping) else {}

    for name, keys in ID_SOURCES.items():
        sources = [("", extra, keys)]
        if name in NVEXT_CONTEXT:
            sources.append(("nvext.agent_context.", context, NVEXT_CONTEXT[name]))
        found, value = _first(sources)
        if found is None and name in HEADERS and HEADERS[name] in headers:
            found, value = HEADERS[name], headers[HEADERS[name]]
        if found is None:
            continue
        parsed, outcome = _as_id(value)
        hints.outcome[found] = outcome
        setattr(hints, name, parsed)

    found, value = _first(
        [("", extra, ("priority",)), ("nvext.agent_hints.", agent_hints, ("priority",))]
    )
    if found is not None:
        priority, outcome = _as_priority(value)
        hints.outcome[found] = outcome
        if priority is not None:
            hints.priority = priority
    if "is_last_step" in extra:
        value = extra["is_last_step"]
        if isinstance(value, bool):
            hints.is_last_step = value
            hints.outcome["is_last_step"] = "accepted"
        else:
            hints.outcome["is_last_step"] = "ignored: not a boolean"
    for key in agent_hints:
        if key != "priority":
            hints.outcome[f"nvext.agent_hints.{key}"] = "ignored: a router hint"
    return hints
