"""ASGI middleware in front of every route: the API key and the body size limit."""

from __future__ import annotations

import hmac

from agentrt.serve.errors import APIError

OPEN_PATHS = frozenset({"/health"})


class Guards:
    """Rejects, before any route runs, a request without the right bearer key (401; not
    for /health) and one whose declared body is over `max_body_bytes` (413). Bodies sent
    without a length are counted as they are read (see app.read_body)."""

    def __init__(self, app, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        error = self._check(scope)
        if error is not None:
            response = error.response()
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    def _check(self, scope) -> APIError | None:
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                return APIError(
                    401,
                    "missing or wrong API key: send `Authorization: Bearer <key>`",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                return APIError(400, "the Content-Length header is not a number")
            if too_big:
                return too_large(self.max_body_bytes)
        return None


def too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is over the limit of {limit} bytes", code="too_large")
