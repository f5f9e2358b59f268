"""Where a remote server is and how to talk to it (`backend="openai"`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agentrt.remote.server_kind import KINDS


@dataclass(frozen=True)
class RemoteSettings:
    """`api_key_env`: the environment variable holding the bearer key (the key itself
    is never taken as an argument, so it stays out of shells' history and logs)."""

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    server_kind: str = "auto"
    max_in_flight: int = 64
    timeout_s: float = 600.0
    retries: int = 5
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if self.server_kind not in KINDS:
            raise ValueError(f"server_kind must be one of {KINDS}, got {self.server_kind!r}")
        if self.max_in_flight < 1 or self.retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_in_flight >= 1, retries >= 0 and timeout_s > 0 are needed")

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(f"the environment variable {self.api_key_env} is not set")
        return key


class RemoteError(RuntimeError):
    """The server could not be used at all (unreachable, no model)."""
