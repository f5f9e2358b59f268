"""Run the app under uvicorn: loopback by default, graceful on SIGTERM.

SIGTERM (or Ctrl-C) stops accepting connections, lets in-flight requests finish for up to
`grace_seconds`, then cancels the rest (which aborts them in the engine) and exits 0.
"""

from __future__ import annotations

import signal
import socket

import uvicorn
from starlette.applications import Starlette

from agentrt.engine.llm_engine import LLMEngine
from agentrt.serve.app import build_app
from agentrt.serve.settings import ServeSettings


class _Server(uvicorn.Server):
    """uvicorn's server that first marks the app as draining (/health says 503 and new
    requests get 503 while connections wind down)."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig, frame) -> None:
        service = self.app.state.service  # None until startup completes
        if service is not None:
            service.draining = True
        super().handle_exit(sig, frame)


def make_server(
    engine: LLMEngine, settings: ServeSettings, log_level: str = "info"
) -> uvicorn.Server:
    app = build_app(engine, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=settings.log_requests,
        timeout_graceful_shutdown=settings.grace_seconds,
        lifespan="on",
    )
    return _Server(config, app)


def serve(engine: LLMEngine, settings: ServeSettings, sock: socket.socket | None = None) -> None:
    """Serve until SIGTERM/SIGINT. uvicorn re-raises the signal it stopped on once it is
    done; a no-op SIGTERM handler underneath (whatever the caller had is put back after)
    makes that a clean exit (status 0)."""
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        make_server(engine, settings).run(sockets=[sock] if sock is not None else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
