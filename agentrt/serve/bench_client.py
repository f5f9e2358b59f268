"""The HTTP session of the load generators (`bench serve`'s clients)."""

from __future__ import annotations

import aiohttp

# Below the server's keep-alive (uvicorn's `timeout_keep_alive`, 5 s, as vLLM and SGLang
# run it): a connection left idle longer, e.g. over a tool pause, is not reused, so a
# request never goes out on a connection the server is closing (ServerDisconnectedError).
KEEPALIVE_S = 3.0


def client_session(
    base_url: str, clients: int, timeout_s: float, headers: dict[str, str] | None = None
) -> aiohttp.ClientSession:
    """A session for ``clients`` concurrent clients of ``base_url`` (a few connections
    spare), each request bounded by ``timeout_s``."""
    return aiohttp.ClientSession(
        base_url,
        headers=headers,
        connector=aiohttp.TCPConnector(limit=clients + 4, keepalive_timeout=KEEPALIVE_S),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )
