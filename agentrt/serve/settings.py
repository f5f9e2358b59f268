"""The server's own settings (the engine's are an EngineConfig)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeSettings:
    """`api_key`: when set, every route but /health needs `Authorization: Bearer <key>`.
    `max_body_bytes`: larger request bodies get 413. `max_prompt_tokens`: longer prompts
    get 400 (None: what the engine serves). `max_pending`: requests (choices) in flight at
    most; more get 503 with `Retry-After`. `grace_seconds`: on SIGTERM, how long in-flight
    requests may finish before they are aborted. `served_model_name`: the id in
    /v1/models and the one requests must name (None: the engine's model, or `default`).
    `pin_budget`: the share of the device KV pool that conversations paused on a tool
    call may hold pinned."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    served_model_name: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_prompt_tokens: int | None = None
    max_pending: int = 512
    max_n: int = 16
    grace_seconds: float = 30.0
    retry_after_seconds: int = 1
    log_requests: bool = False
    pin_budget: float = 0.25
