"""The server's own settings (the engine's are an EngineConfig)."""

from __future__ import annotations

from dataclasses import dataclass

PIN_RULES = ("cost", "pause")


@dataclass
class ServeSettings:
    """`api_key`: when set, every route but /health needs `Authorization: Bearer <key>`.
    `max_body_bytes`: larger request bodies get 413. `max_prompt_tokens`: longer prompts
    get 400 (None: what the engine serves). `max_pending`: requests (choices) in flight at
    most; more get 503 with `Retry-After`. `grace_seconds`: on SIGTERM, how long in-flight
    requests may finish before they are aborted. `served_model_name`: the id in
    /v1/models and the one requests must name (None: the engine's model, or `default`).
    `pin_budget`: the share of the device KV pool that conversations paused on a tool
    call may hold pinned; `pin_rule`: `cost` pins for the time-to-live whose expected
    reload saving outweighs the pool share held (`learn.pin_value`), `pause` pins every
    pause that fits the budget for the pause expected of its tools. `arrival_wait_ms`:
    after a step that finished requests, how long the next step may wait for their
    clients' next requests (`AsyncLLM.arrival_wait`)."""

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
    pin_rule: str = "cost"
    arrival_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        if self.pin_rule not in PIN_RULES:
            raise ValueError(f"pin_rule must be one of {PIN_RULES}, got {self.pin_rule!r}")
