"""A server on a free loopback port in a background thread, for tests; and the tiny
chat model (the tiny llama with SmolLM2's tokenizer and chat template)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
from tiny_models import make_tiny_model

from agentrt.engine import loader
from agentrt.engine.llm_engine import LLMEngine
from agentrt.serve.server import make_server
from agentrt.serve.settings import ServeSettings

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def make_tiny_chat_model(path: Path) -> Path:
    """A tiny random llama over SmolLM2's vocabulary, with its tokenizer and template."""
    make_tiny_model("llama", path, vocab_size=49152, max_position_embeddings=1024)
    source = loader.resolve_model_dir(None)
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, path / name)
    return path


class ServerThread:
    """`with ServerThread(engine, settings) as s:` serves on `s.base_url` until the block
    ends (then it shuts down as on SIGTERM: uvicorn's graceful exit)."""

    def __init__(self, engine: LLMEngine, settings: ServeSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or ServeSettings(grace_seconds=5)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = make_server(engine, self.settings, log_level="warning")
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    @property
    def app(self):
        return self.server.config.app

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.base_url + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(self.base_url + path, timeout=60, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return httpx.delete(self.base_url + path, timeout=30, **kw)
