"""Server-sent events as OpenAI streams them: `data: <json>` lines, then `data: [DONE]`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
from pydantic import BaseModel
from starlette.responses import StreamingResponse

DONE = b"data: [DONE]\n\n"


def event(body: BaseModel | dict) -> bytes:
    data = body if isinstance(body, dict) else body.model_dump(mode="json", exclude_none=False)
    return b"data: " + orjson.dumps(data) + b"\n\n"


class SSEResponse(StreamingResponse):
    """A streaming response that calls `on_close` once it is over, however it ends (a
    client that goes away cancels `events`; its requests are aborted as the engine's
    generators inside it close)."""

    def __init__(self, events: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()
