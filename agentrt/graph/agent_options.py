"""Checks of an agent's declaration, each failing with one line that says what is accepted.

`@wf.agent(...)` calls these before it registers anything; the runtime builds each
call's `SamplingParams` with `make_sampling` too, so a bad `ctx.gen(..., max_tokens=0)`
reads the same way.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.agent_spec import is_positive_int, is_token_ids
from agentrt.graph.errors import GraphError

DECLARATION_KEYWORDS = (
    "name",
    "prefix",
    "after",
    "join",
    "loop_to",
    "max_loops",
    "max_visits",
    "timeout",
)
SAMPLING_KEYWORDS = tuple(SamplingParams.model_fields)


class AgentOptionError(GraphError):
    """An agent's declaration (or a model call's sampling settings) is wrong."""


def check_agent_function(name: str | None, fn: object) -> str:
    """`fn` must be an `async def` taking exactly one positional argument; returns the
    agent's name (`name`, else the function's)."""
    name = name or getattr(fn, "__name__", None) or repr(fn)
    if not inspect.iscoroutinefunction(fn):
        kind = "a plain function (def)" if inspect.isfunction(fn) else type(fn).__name__
        raise AgentOptionError(
            f"agent {name!r} must be an async function, got {kind}: "
            f"write `async def {name}(ctx): ...`"
        )
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise AgentOptionError(
            f"agent {name!r} must take one argument, its context: `async def {name}(ctx)`"
        ) from None
    return name


def check_prefix(name: str, prefix: object) -> None:
    """Text, or token ids (a sequence of ints >= 0)."""
    if not isinstance(prefix, str) and not is_token_ids(prefix):
        raise AgentOptionError(
            f"agent {name!r}: prefix must be text (a str) or a list of token ids (ints >= 0), "
            f"got {type(prefix).__name__}"
        )


def check_max_loops(name: str, max_loops: object) -> None:
    if max_loops is not None and not is_positive_int(max_loops):
        raise AgentOptionError(
            f"agent {name!r}: max_loops must be a positive int (how many times the loop "
            f"may be taken), got {max_loops!r}"
        )


def check_timeout(owner: str, timeout: object) -> None:
    """`timeout` is None or a positive number of seconds; `owner` names whose it is in
    the error (e.g. "agent 'coder'")."""
    if timeout is None:
        return
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not number or not timeout > 0 or math.isnan(timeout):  # type: ignore[operator,arg-type]
        raise AgentOptionError(
            f"{owner}: timeout must be a positive number of seconds or None, got {timeout!r}"
        )


def make_sampling(agent: str, settings: Mapping[str, Any]) -> SamplingParams:
    """`SamplingParams(**settings)`, or an `AgentOptionError` naming the bad setting."""
    for key in settings:
        if key not in SAMPLING_KEYWORDS:
            raise AgentOptionError(f"agent {agent!r}: {_unknown(key)}")
    try:
        return SamplingParams(**settings)
    except ValidationError as exc:  # a SamplingParamsError: one line per bad field
        raise AgentOptionError(f"agent {agent!r}: {exc}") from None


def _unknown(key: str) -> str:
    known = DECLARATION_KEYWORDS + SAMPLING_KEYWORDS
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown keyword {key!r}{hint}; accepted: {', '.join(DECLARATION_KEYWORDS)} "
        f"and the sampling settings {', '.join(SAMPLING_KEYWORDS)}"
    )
