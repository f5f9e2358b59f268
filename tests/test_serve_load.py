"""Load and faults on loopback: 64 concurrent streaming clients, random disconnects and
malformed bodies interleaved. Every good request gets the tokens it gets alone (greedy,
batch-invariant engine); afterwards the engine holds no request and no leaked page."""

from __future__ import annotations

import random
import time

import anyio
import httpx
import orjson
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.engine.sampling_params import SamplingParams
from agentrt.serve.settings import ServeSettings

CLIENTS = 64
TOKENS = 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("load") / "tinychat")


def _engine(model_dir):
    return make_engine(model_dir, kv_cache_tokens=4096, batch_invariant=True, max_num_seqs=32)


def _alone(model_dir, prompts: list[list[int]]) -> list[str]:
    engine = _engine(model_dir)
    texts = []
    for ids in prompts:
        engine.add_request(ids, SamplingParams(max_tokens=TOKENS, ignore_eos=True))
        while engine.has_unfinished_requests():
            for out in engine.step():
                if out.finished:
                    texts.append(out.text)
    return texts


def _messages(i: int) -> list[dict]:
    system = "You answer questions about the town. " * (1 + i % 3)  # shared prefixes
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Item {i}?"}]


async def _stream(client: httpx.AsyncClient, body: dict, leave_after: int | None):
    """The streamed text, or None when this client leaves after `leave_after` events."""
    text, seen = [], 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            seen += 1
            if leave_after is not None and seen > leave_after:
                return None
            if line == "data: [DONE]":
                break
            chunk = orjson.loads(line[6:])
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text)


BAD_BODIES = [
    b"{",
    b"[]",
    b'{"model": "tiny", "messages": []}',
    b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
    b'{"messages": [{"role": "user", "content": "x"}], "temperature": -1}',
]


def test_concurrent_streams_with_disconnects_and_bad_bodies(model_dir):
    engine = _engine(model_dir)
    rng = random.Random(0)
    leaving = {i: rng.randint(1, 3) for i in rng.sample(range(CLIENTS), CLIENTS // 4)}
    results: dict[int, str | None] = {}
    statuses: list[int] = []
    model = str(model_dir)

    async def main(base_url: str) -> None:
        limits = httpx.Limits(max_connections=CLIENTS + 16)
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

            async def good(i: int) -> None:
                body = {"model": model, "messages": _messages(i), "stream": True}
                body.update(max_tokens=TOKENS, temperature=0, ignore_eos=True)
                results[i] = await _stream(client, body, leaving.get(i))

            async def bad(k: int) -> None:
                r = await client.post("/v1/chat/completions", content=BAD_BODIES[k % 5])
                statuses.append(r.status_code)

            async with anyio.create_task_group() as tg:
                for i in range(CLIENTS):
                    tg.start_soon(good, i)
                    if i % 4 == 0:
                        tg.start_soon(bad, i // 4)

    settings = ServeSettings(grace_seconds=5, served_model_name=model)
    with ServerThread(engine, settings) as server:
        anyio.run(main, server.base_url)
        deadline = time.monotonic() + 30
        while engine.has_unfinished_requests() or engine.batcher.running:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        engine.check_integrity()
        tree_pages = engine.kv.allocator.num_used
        engine.reset_prefix_cache()
        assert engine.kv.allocator.num_used == 0, f"{tree_pages} pages, leaked some"

    assert sorted(set(statuses)) == [400, 404, 422] and len(statuses) == CLIENTS // 4
    kept = [i for i in range(CLIENTS) if i not in leaving]
    assert all(results[i] is None for i in leaving)
    tok = engine.tokenizer
    prompts = [
        list(tok.apply_chat_template(_messages(i), add_generation_prompt=True, return_dict=False))
        for i in kept
    ]
    assert [results[i] for i in kept] == _alone(model_dir, prompts)
