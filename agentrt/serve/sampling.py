"""OpenAI request fields to the engine's SamplingParams (one per choice)."""

from __future__ import annotations

from pydantic import ValidationError

from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.serve.errors import APIError
from agentrt.serve.protocol import _Sampling


def sampling_params(
    req: _Sampling,
    max_tokens: int,
    logprobs: int | None,
    structured: StructuredOutputParams | None,
) -> list[SamplingParams]:
    """One SamplingParams per choice. OpenAI's default temperature is 1; a request seed
    gives choice i the seed `seed + i`, so n seeded choices differ but each reproduces."""
    penalties = (
        ("frequency_penalty", req.frequency_penalty),
        ("presence_penalty", req.presence_penalty),
    )
    for name, value in penalties:
        if value:
            raise APIError(400, f"{name} is not supported (use 0 or leave it out)", param=name)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or ())
    try:
        return [
            SamplingParams(
                temperature=1.0 if req.temperature is None else req.temperature,
                top_p=1.0 if req.top_p is None else req.top_p,
                top_k=max(0, req.top_k or 0),
                seed=None if req.seed is None else req.seed + i,
                max_tokens=max_tokens,
                stop=tuple(stop),
                ignore_eos=req.ignore_eos,
                min_tokens=req.min_tokens,
                logprobs=logprobs,
                structured_output=structured,
            )
            for i in range(req.n)
        ]
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise APIError(400, f"{param}: {first['msg']}", param=param) from None
