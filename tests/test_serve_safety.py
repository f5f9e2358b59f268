"""Safe defaults: the API key, body and prompt limits, the bounded queue, disconnects."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.serve.settings import ServeSettings

KEY = "sk-test-very-secret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = make_tiny_chat_model(tmp_path_factory.mktemp("safety") / "tinychat")
    engine = make_engine(model, kv_cache_tokens=8192)
    settings = ServeSettings(
        api_key=KEY,
        max_body_bytes=4000,
        max_prompt_tokens=64,
        max_pending=2,
        grace_seconds=5,
        log_requests=True,
    )
    with ServerThread(engine, settings) as s:
        yield s


AUTH = {"Authorization": f"Bearer {KEY}"}


def _body(server, **kw) -> dict:
    body = {"model": str(server.engine.config.model), "max_tokens": 3}
    body["messages"] = [{"role": "user", "content": "hi"}]
    return {**body, **kw}


def _wait_idle(engine, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.has_unfinished_requests() or engine.batcher.running:
        assert time.monotonic() < deadline, "requests still in the engine"
        time.sleep(0.02)
    engine.check_integrity()


def test_every_route_but_health_needs_the_key(server, caplog):
    caplog.set_level(logging.DEBUG)
    levels = {}
    for name in ("uvicorn.access", "uvicorn.error"):  # they do not propagate to the root
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(caplog.handler)
    for path in ("/v1/models", "/metrics"):
        assert server.get(path).status_code == 401
        assert server.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert server.get(path, headers=AUTH).status_code == 200
    r = server.post("/v1/chat/completions", json=_body(server))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert server.post("/v1/chat/completions", json=_body(server), headers=AUTH).status_code == 200
    assert server.get("/health").status_code == 200
    for name, level in levels.items():
        logging.getLogger(name).removeHandler(caplog.handler)
        logging.getLogger(name).setLevel(level)
    assert "POST /v1/chat/completions" in caplog.text  # the access log was captured
    assert KEY not in caplog.text


def test_large_bodies_are_413_declared_or_streamed(server):
    big = _body(server, messages=[{"role": "user", "content": "x" * 5000}])
    r = server.post("/v1/chat/completions", json=big, headers=AUTH)
    assert r.status_code == 413
    payload = httpx.Request("POST", "/", json=big).content

    def chunks():
        yield payload[:3000]
        yield payload[3000:]

    r = server.post("/v1/chat/completions", content=chunks(), headers=AUTH)  # chunked
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_prompt_over_the_server_limit_is_400(server):
    r = server.post(
        "/v1/chat/completions",
        json=_body(server, messages=[{"role": "user", "content": "word " * 100}]),
        headers=AUTH,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def _stream_until_cancelled(server, started: threading.Event, stop: threading.Event) -> None:
    body = _body(server, max_tokens=900, stream=True, ignore_eos=True)
    with httpx.stream(
        "POST", server.base_url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60
    ) as r:
        for _ in r.iter_lines():
            started.set()
            if stop.is_set():
                return  # closes the connection mid-stream


def test_full_queue_answers_503_and_disconnects_free_their_kv(server):
    engine = server.engine
    stop = threading.Event()
    streams = []
    for _ in range(2):
        started = threading.Event()
        t = threading.Thread(target=_stream_until_cancelled, args=(server, started, stop))
        t.start()
        assert started.wait(30)
        streams.append(t)
    r = server.post("/v1/chat/completions", json=_body(server), headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "server_busy"
    generated = engine.stats.generated_tokens
    stop.set()
    for t in streams:
        t.join(30)
    _wait_idle(engine)
    assert engine.stats.generated_tokens - generated < 2 * 900 - 50  # aborted, not run out
    r = server.post("/v1/chat/completions", json=_body(server), headers=AUTH)
    assert r.status_code == 200  # places given back


def test_non_streaming_client_that_leaves_aborts_its_request(server):
    engine = server.engine
    before = engine.stats.generated_tokens
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            server.base_url + "/v1/chat/completions",
            json=_body(server, max_tokens=900, ignore_eos=True),
            headers=AUTH,
            timeout=httpx.Timeout(30, read=0.3),
        )
    _wait_idle(engine)
    assert engine.stats.generated_tokens - before < 900


def _metric(text: str, name: str) -> float:
    line = next(li for li in text.splitlines() if li.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_count_requests_tokens_and_running_streams(server):
    before = server.get("/metrics", headers=AUTH).text
    started, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=_stream_until_cancelled, args=(server, started, stop))
    t.start()
    assert started.wait(30)
    during = server.get("/metrics", headers=AUTH).text
    stop.set()
    t.join(30)
    _wait_idle(server.engine)
    assert _metric(during, "agentrt:num_requests_running") == 1
    r = server.post("/v1/chat/completions", json=_body(server, max_tokens=3), headers=AUTH)
    after = server.get("/metrics", headers=AUTH).text
    usage = r.json()["usage"]
    gen = "agentrt:generation_tokens_total"
    assert _metric(after, gen) - _metric(before, gen) >= usage["completion_tokens"]
    assert _metric(after, "agentrt:num_requests_running") == 0
    assert "agentrt:e2e_request_latency_seconds_bucket" in after
    assert "agentrt:prefix_cache_hits_total{model_name=" in after and 'tier="host"' in after


def test_shutdown_past_the_grace_period_aborts_streams_and_frees_kv(server):
    engine = make_engine(server.engine.config.model, kv_cache_tokens=8192)
    lines: list[str] = []
    short = ServerThread(engine, ServeSettings(grace_seconds=0.5))
    body = {"model": str(engine.config.model), "messages": [{"role": "user", "content": "go"}]}
    body.update(max_tokens=900, ignore_eos=True, stream=True)

    def read() -> None:
        try:
            with httpx.stream(
                "POST", short.base_url + "/v1/chat/completions", json=body, timeout=60
            ) as r:
                lines.extend(r.iter_lines())
        except httpx.HTTPError:
            pass  # the server cut the stream

    with short:
        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 30
        while not engine.has_unfinished_requests():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    reader.join(30)
    assert "data: [DONE]" not in lines
    assert not engine.has_unfinished_requests() and not engine.batcher.running
    engine.check_integrity()
    assert engine.stats.generated_tokens < 900


def test_a_failed_engine_answers_503_and_health_says_so(server):
    engine = make_engine(server.engine.config.model, kv_cache_tokens=4096)
    body = {"model": str(engine.config.model), "messages": [{"role": "user", "content": "x"}]}
    body["max_tokens"] = 2

    def device_lost():  # fault injection: the engine's step fails for good
        raise RuntimeError("device lost")

    with ServerThread(engine) as broken:
        assert broken.post("/v1/chat/completions", json=body).status_code == 200
        engine.step = device_lost
        r = broken.post("/v1/chat/completions", json=body)
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_dead"
        assert broken.get("/health").status_code == 503
        r = broken.post("/v1/chat/completions", json={**body, "stream": True})
        assert '"code":"engine_dead"' in r.text and r.text.endswith("data: [DONE]\n\n")
