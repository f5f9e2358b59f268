"""A request that fails inside the engine fails only itself over HTTP: a 500
`engine_error` (an `error` event in a stream) for it, while the requests beside it get
the tokens they get alone and the engine ends clean."""

from __future__ import annotations

import anyio
import httpx
import orjson
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampling_params import SamplingParams
from agentrt.serve.settings import ServeSettings

POISON = 4242  # a token id in the vocabulary that makes the batch holding it fail
PROMPTS = [[100 + i, 200 + i, 300 + i, 400 + i] * 3 for i in range(4)]
TOKENS = 24


class PoisonedRunner(ModelRunner):
    """The engine's own runner, except that a batch holding a prompt with `POISON`
    raises (a model fault triggered by one request's data)."""

    def __init__(self, inner: ModelRunner) -> None:
        self.inner = inner
        self.uses_compute_thread = inner.uses_compute_thread

    def execute(self, batch: ScheduledBatch) -> list[int]:
        if any(POISON in item.seq.prompt_token_ids for item in batch.items):
            raise RuntimeError("kernel fault")
        return self.inner.execute(batch)

    def forget(self, request_id: str) -> None:
        self.inner.forget(request_id)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("fault") / "tinychat")


def _engine(model_dir):
    return make_engine(model_dir, kv_cache_tokens=4096, batch_invariant=True)


def _alone(model_dir) -> list[list[int]]:
    out = []
    for ids in PROMPTS:
        engine = _engine(model_dir)
        engine.add_request(ids, SamplingParams(max_tokens=TOKENS, ignore_eos=True))
        while engine.has_unfinished_requests():
            out += [o.token_ids for o in engine.step() if o.finished]
    return out


def _body(prompt: list[int], stream: bool) -> dict:
    return {
        "model": "tinychat",
        "prompt": prompt,
        "max_tokens": TOKENS,
        "temperature": 0,
        "ignore_eos": True,
        "stream": stream,
    }


def test_an_engine_fault_fails_only_its_request_over_http(model_dir):
    engine = _engine(model_dir)
    engine.runner = PoisonedRunner(engine.runner)
    results: dict[int, list] = {}
    faults: dict[str, object] = {}

    async def healthy(client: httpx.AsyncClient, i: int) -> None:
        r = await client.post("/v1/completions", json=_body(PROMPTS[i], False))
        assert r.status_code == 200, r.text
        results[i] = r.json()["choices"][0]["text"]

    async def poisoned_whole(client: httpx.AsyncClient) -> None:
        await anyio.sleep(0.01)  # while the others run
        faults["whole"] = await client.post("/v1/completions", json=_body([POISON] * 5, False))

    async def poisoned_stream(client: httpx.AsyncClient) -> None:
        await anyio.sleep(0.01)
        events = []
        body = _body([POISON, 7, 8], True)
        async with client.stream("POST", "/v1/completions", json=body) as r:
            faults["stream status"] = r.status_code
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
        faults["stream"] = events

    async def main(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async with anyio.create_task_group() as tg:
                for i in range(len(PROMPTS)):
                    tg.start_soon(healthy, client, i)
                tg.start_soon(poisoned_whole, client)
                tg.start_soon(poisoned_stream, client)
            r = await client.post("/v1/completions", json=_body(PROMPTS[0], False))
            results["after"] = r.json()["choices"][0]["text"]  # the server is alive

    with ServerThread(engine, ServeSettings(served_model_name="tinychat")) as server:
        anyio.run(main, server.base_url)
    whole = faults["whole"]
    assert whole.status_code == 500
    error = whole.json()["error"]
    assert error["code"] == "engine_error" and "kernel fault" in error["message"]
    assert faults["stream status"] == 200
    *chunks, done = faults["stream"]
    assert done == "[DONE]"
    assert "kernel fault" in orjson.loads(chunks[-1])["error"]["message"]
    tokenizer = engine.tokenizer
    alone = [tokenizer.decode(ids) for ids in _alone(model_dir)]
    assert [results[i] for i in range(len(PROMPTS))] == alone
    assert results["after"] == alone[0]
    assert not engine.requests
    engine.check_integrity()
