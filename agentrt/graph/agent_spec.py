"""`AgentSpec`: what a step graph knows about one agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from agentrt.graph.errors import GraphError, InvalidBoundError

Join = Literal["and", "or"]
JOINS: tuple[Join, ...] = ("and", "or")


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a step graph (immutable).

    - `name`: unique within its graph, non-empty.
    - `prefix`: the fixed, cacheable start of every prompt it sends (text, or token ids,
      stored as a tuple); `""` for none.
    - `join`: `"and"` waits for every forward predecessor's signal, `"or"` runs on the first.
    - `sampling`: default sampling settings (read-only mapping; not interpreted here).
    - `max_visits`: at most this many runs per workflow instance (`None`: no cap).
    """

    name: str
    prefix: str | tuple[int, ...] = ""
    join: Join = "and"
    sampling: Mapping[str, Any] = field(default_factory=dict, hash=False)
    max_visits: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"agent name must be a non-empty string, got {self.name!r}")
        if self.join not in JOINS:
            raise GraphError(f"agent {self.name!r}: join must be 'and' or 'or', got {self.join!r}")
        if not isinstance(self.prefix, str):
            object.__setattr__(self, "prefix", _token_ids(self.name, self.prefix))
        if self.max_visits is not None and not is_positive_int(self.max_visits):
            raise InvalidBoundError(
                f"agent {self.name!r}: max_visits must be a positive int or None, "
                f"got {self.max_visits!r}"
            )
        object.__setattr__(self, "sampling", MappingProxyType(dict(self.sampling)))


def is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_token_ids(value: object) -> bool:
    """A sequence of ints >= 0 (bools excluded)."""
    return isinstance(value, Sequence) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    )


def _token_ids(name: str, prefix: object) -> tuple[int, ...]:
    if not is_token_ids(prefix):
        raise GraphError(
            f"agent {name!r}: prefix must be a string or a sequence of token ids (ints >= 0)"
        )
    return tuple(prefix)  # type: ignore[arg-type]
