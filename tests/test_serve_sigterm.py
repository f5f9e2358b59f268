"""`agentrt serve` as a process: SIGTERM drains in-flight requests and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import make_tiny_chat_model

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("sigterm") / "tinychat")


def _start(model_dir: Path, port: int, grace: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGENTRT_API_KEY": ""}
    cmd = [sys.executable, "-m", "agentrt.cli", "serve", "--model", str(model_dir)]
    cmd += ["--dtype", "float32", "--port", str(port), "--grace-seconds", str(grace)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "server did not come up"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)


def test_sigterm_finishes_the_stream_in_flight_then_exits_0(model_dir):
    port = _free_port()
    proc = _start(model_dir, port, grace=120)
    body = {"model": str(model_dir), "messages": [{"role": "user", "content": "go"}]}
    body.update(max_tokens=40, ignore_eos=True, stream=True, temperature=0)
    events = []
    try:
        with httpx.stream(
            "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60
        ) as r:
            for line in r.iter_lines():
                if not line:
                    continue
                if not events:
                    proc.send_signal(signal.SIGTERM)
                events.append(line)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert events[-1] == "data: [DONE]"
    last = json.loads(events[-2][len("data: ") :])
    assert last["choices"][0]["finish_reason"] == "length"
    with pytest.raises(httpx.TransportError):  # no longer accepting
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
