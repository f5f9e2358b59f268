"""Request bodies: read within a size limit, parsed as JSON, validated by a model."""

from __future__ import annotations

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from agentrt.serve.errors import APIError, from_validation
from agentrt.serve.guards import too_large


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 once more than `limit` bytes have arrived."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict:
    """The body as a JSON object, or 400 / 413."""
    body = await read_body(request, limit)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise APIError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "the body must be a JSON object", code="invalid_json")
    return data


async def parse(request: Request, model: type[BaseModel], limit: int):
    """The body validated as `model`, or 400 / 413 / 422 naming the field."""
    data = await read_json(request, limit)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None
