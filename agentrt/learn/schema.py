"""The learned-graph JSON document (`GET /v1/workflows/learned`, `replay --graph FILE`).

    {"schema": "agentrt.learned-graphs", "version": 1,
     "block_size": 16,                            # tokens per hashed prefix block
     "kinds": [{
        "kind": "planner",                        # kind hint, or the first agent's key
        "agents": [{"key": "planner", "requests": 12}, {"key": "prefix:9f0c...", ...}],
        "starts": {"planner": 4},                 # workflows that began with the agent
        "ends": {"prefix:9f0c...": 4},            # workflows that ended after the agent
        "transitions": [{"src": "planner", "dst": "prefix:9f0c...",
                         "count": 8, "probability": 0.6667,
                         "max_per_workflow": 2,   # most times one workflow took the edge
                         "delay_s": STATS}]}],    # from src's finish (else start) to dst
     "tool_pauses": {"web_search": STATS}}        # response with tool_calls -> next request

    STATS = {"count", "mean", "ewma", "alpha", "window", "recent": [seconds, ...]}

A transition's probability is count / (all transitions out of src + ends[src]); it is
derived from the counts, and written for the reader. Every key a kind names must be one
of its agents. `validate_document` checks a parsed document and raises
`LearnedGraphFormatError` with one line naming the first problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentrt.learn.errors import LearnedGraphFormatError

SCHEMA_NAME = "agentrt.learned-graphs"
SCHEMA_VERSION = 1

Seconds = Annotated[float, Field(ge=0)]
Key = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StatsDoc(_Strict):
    count: Count
    mean: Seconds
    ewma: Seconds
    alpha: float = Field(gt=0, le=1)
    window: int = Field(ge=1)
    recent: list[Seconds]

    @model_validator(mode="after")
    def _window_holds_recent(self) -> StatsDoc:
        if len(self.recent) > min(self.window, self.count):
            raise ValueError("recent holds more samples than window and count allow")
        return self


class AgentDoc(_Strict):
    key: Key
    requests: Count


class TransitionDoc(_Strict):
    src: Key
    dst: Key
    count: int = Field(ge=1)
    probability: float = Field(ge=0, le=1)
    max_per_workflow: int = Field(ge=1)
    delay_s: StatsDoc


class KindDoc(_Strict):
    kind: Key
    agents: list[AgentDoc]
    starts: dict[Key, Count]
    ends: dict[Key, Count]
    transitions: list[TransitionDoc]

    @model_validator(mode="after")
    def _names_are_agents(self) -> KindDoc:
        known = [a.key for a in self.agents]
        if len(set(known)) != len(known):
            raise ValueError(f"kind {self.kind!r} lists an agent twice")
        names = [*self.starts, *self.ends, *(n for t in self.transitions for n in (t.src, t.dst))]
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"kind {self.kind!r} names agents it does not list: {unknown}")
        edges = [(t.src, t.dst) for t in self.transitions]
        if len(set(edges)) != len(edges):
            raise ValueError(f"kind {self.kind!r} lists a transition twice")
        return self


class LearnedDoc(_Strict):
    schema_: Literal["agentrt.learned-graphs"] = Field(SCHEMA_NAME, alias="schema")
    version: Literal[1] = SCHEMA_VERSION
    block_size: int = Field(ge=1)
    kinds: list[KindDoc]
    tool_pauses: dict[Key, StatsDoc] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="after")
    def _kinds_are_unique(self) -> LearnedDoc:
        kinds = [k.kind for k in self.kinds]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a kind is listed twice")
        return self


def validate_document(data: Any) -> dict[str, Any]:
    """The document, checked against the schema; raises `LearnedGraphFormatError`."""
    try:
        doc = LearnedDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise LearnedGraphFormatError(
            f"learned graph: {where}: {first['msg']}".replace("\n", " ")
        ) from None
    return doc.model_dump(by_alias=True)
