"""What `LLMEngine.add_request` checks, so that a request it takes cannot fail a step.

Each check raises a `ValueError` or `TypeError` with one line naming the bad value and
what is accepted. `SamplingParams` checks its own ranges when it is built; here are the
checks that need the engine (its vocabulary) or the rest of the request.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable

from agentrt.engine.errors import PromptTooLongError
from agentrt.engine.sampling_params import SamplingParams


def token_ids_of(prompt: Iterable[object]) -> list[int]:
    """``prompt`` as a list of Python ints: ints and integer types (numpy ints, bools)
    are taken, anything else (floats, strings) raises a `TypeError`."""
    if type(prompt) in (list, tuple):
        try:  # ints and integer types, converted in C
            return array("q", prompt).tolist()  # type: ignore[arg-type]
        except (TypeError, OverflowError):
            pass  # ids beyond int64 (refused by the range check) or not integers
    try:
        ids = iter(prompt)
    except TypeError:
        raise TypeError(
            f"a prompt is a string or a list of integer token ids, got {type(prompt).__name__}"
        ) from None
    out = []
    for position, token in enumerate(ids):
        try:
            out.append(operator.index(token))
        except TypeError:
            raise TypeError(
                f"prompt token ids must be integers, got {token!r} "
                f"({type(token).__name__}) at position {position}"
            ) from None
    return out


def check_prompt(token_ids: list[int], max_model_len: int, vocab_size: int | None) -> None:
    """The prompt is not empty, leaves room for a token, and (with ``vocab_size``) is
    made of ids in the vocabulary."""
    if not token_ids:
        raise ValueError("empty prompt: a request needs at least one token")
    if len(token_ids) >= max_model_len:
        raise PromptTooLongError(
            f"prompt has {len(token_ids)} tokens but this engine serves at most "
            f"{max_model_len - 1} prompt tokens (model context / KV capacity "
            f"{max_model_len} tokens)"
        )
    if vocab_size is None or (min(token_ids) >= 0 and max(token_ids) < vocab_size):
        return
    position, token = next((i, t) for i, t in enumerate(token_ids) if not 0 <= t < vocab_size)
    raise ValueError(
        f"prompt token ids must be in [0, {vocab_size}), got {token} at position {position}"
    )


def check_request(
    params: object,
    vocab_size: int | None,
    num_prompt_tokens: int,
    request_id: object,
    agent_id: object,
    prefix_len: object,
) -> None:
    """The request's parts besides the prompt ids (checked as they are converted)."""
    if not isinstance(params, SamplingParams):
        raise TypeError(f"params must be a SamplingParams, got {type(params).__name__}")
    if params.stop_token_ids and vocab_size is not None:
        bad = [t for t in params.stop_token_ids if t >= vocab_size]
        if bad:
            raise ValueError(
                f"SamplingParams.stop_token_ids must be token ids in [0, {vocab_size}) "
                f"for this model, got {bad[0]}"
            )
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        raise TypeError(f"request_id must be a non-empty string, got {request_id!r}")
    if agent_id is not None and not isinstance(agent_id, str):
        raise TypeError(f"agent_id must be a string or None, got {type(agent_id).__name__}")
    if prefix_len is not None and (
        not isinstance(prefix_len, int) or not 0 <= prefix_len <= num_prompt_tokens
    ):
        raise ValueError(
            f"prefix_len must be None or an integer in [0, {num_prompt_tokens}] "
            f"(the prompt's length), got {prefix_len!r}"
        )
