"""What the `agentrt bench serve` workloads share: a server in a child process on a free
loopback port, started with the bench's engine flags, and the modes a run compares."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from agentrt.serve.engine_flags import engine_argv


def free_port() -> int:
    """A loopback port free now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(args: argparse.Namespace, serve_argv: tuple[str, ...] = ()) -> Iterator[str]:
    """`agentrt serve` in a child process on a free loopback port: yields its URL once it
    is healthy, stops it (SIGTERM) when the body ends (`serve_argv`: server flags besides
    the engine's)."""
    port = free_port()
    cmd = [sys.executable, "-m", "agentrt.cli", "serve", "--port", str(port)]
    cmd += engine_argv(args) + ["--max-pending", "100000", *serve_argv]
    env = {**os.environ, "AGENTRT_API_KEY": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not become healthy in 600 s")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def modes_of(args: argparse.Namespace, known: tuple[str, ...]) -> list[str]:
    modes = [m for m in (args.modes or ",".join(known)).split(",") if m]
    for mode in modes:
        if mode not in known:
            raise SystemExit(f"unknown mode {mode!r}; use some of {','.join(known)}")
    return modes
