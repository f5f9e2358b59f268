"""`agentrt bench serve`: N concurrent HTTP clients against a server, and the same
workload in-process on an engine with the same settings, side by side.

Requests go to /v1/completions as token-id prompts (or, with `endpoint="chat"`, to
/v1/chat/completions as one user message, the prompt's tokens decoded to text) with
`ignore_eos` (every request produces exactly its output length), streamed, with usage
(its cached tokens give the prefix hit rate), through aiohttp (the client `vllm bench
serve` uses; it costs a fraction of httpx's CPU per streamed request, CPU that on a small
machine is taken from the server under test). Each client sends its next request when
the last one ends (a closed loop, as `vllm bench serve --max-concurrency`). Timings are
wall-clock on both sides.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import orjson

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.sampling_params import SamplingParams
from agentrt.serve.bench_client import client_session
from agentrt.trace.metrics import RequestTiming, serving_metrics

JSON = {"Content-Type": "application/json"}
WORKLOADS = ("mixed", "short", "mooncake", "workflow")
# the Mooncake conversation trace shipped beside the repository (DESIGN.md: ../shared/data)
DEFAULT_TRACE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "traces"
    / "mooncake_conversation_trace.jsonl"
)


@dataclass(frozen=True)
class BenchRequest:
    prompt: list[int]
    max_tokens: int
    text: str = ""  # the user message of a chat request


def as_chat(requests: list[BenchRequest], tokenizer) -> list[BenchRequest]:
    """Chat requests: each prompt's tokens decoded as its user message, and `prompt` the
    ids the model's chat template renders from it (what the server will compute)."""
    from agentrt.serve.chat_template import ChatRenderer
    from agentrt.serve.protocol import ChatMessage

    renderer = ChatRenderer(tokenizer)
    out = []
    for r in requests:
        text = tokenizer.decode(r.prompt)
        ids = renderer.render([ChatMessage(role="user", content=text)], None)
        out.append(BenchRequest(ids, r.max_tokens, text))
    return out


def build_workload(
    name: str,
    num_requests: int,
    vocab_size: int,
    output_len: int = 64,
    seed: int = 0,
    trace: Path | None = None,
    scale_tokens: float = 0.05,
    max_prompt: int = 4096,
) -> list[BenchRequest]:
    """`mixed`: the engine bench's prompt lengths (32 to 1,024 random tokens) in turn;
    `short`: 16-token prompts (what the HTTP layer costs, with `output_len=1`);
    `mooncake`: the first records of a Mooncake trace, lengths scaled by `scale_tokens`,
    shared hash blocks as shared prefixes; `workflow`: 8 agents with 512-token fixed
    prefixes taking turns, each call a 64-token unique suffix."""
    rng = random.Random(seed)

    def tokens(n: int) -> list[int]:
        return [rng.randrange(100, vocab_size) for _ in range(n)]

    if name == "mixed":
        lengths = (32, 128, 512, 1024)
        return [BenchRequest(tokens(lengths[i % 4]), output_len) for i in range(num_requests)]
    if name == "short":
        return [BenchRequest(tokens(16), output_len) for _ in range(num_requests)]
    if name == "workflow":
        prefixes = [tokens(512) for _ in range(8)]
        return [BenchRequest(prefixes[i % 8] + tokens(64), output_len) for i in range(num_requests)]
    if name == "mooncake":
        from agentrt.trace.importers import TraceReader
        from agentrt.trace.tokens import prompt_tokens, scaled_len

        out = []
        for record in TraceReader(trace or DEFAULT_TRACE):
            prompt = prompt_tokens(record, vocab_size, scale_tokens)[:max_prompt]
            out.append(BenchRequest(prompt, scaled_len(max(1, record.output_len), scale_tokens)))
            if len(out) == num_requests:
                break
        return out
    raise ValueError(f"unknown workload {name!r}; use one of {WORKLOADS}")


async def _drive(
    requests: list[BenchRequest], clients: int, one, rate: float | None = None, seed: int = 0
) -> float:
    """Run `one(i, request)` for every request, at most `clients` at a time; returns
    seconds. Without `rate`, a closed loop (each client sends its next request when the
    last one ends); with it, requests arrive as a Poisson process of `rate` per second
    (seeded), as `vllm bench serve --request-rate` sends them, and wait for a free client
    (the wait is not part of their latency)."""
    start = time.perf_counter()
    if rate is None:
        pending = iter(enumerate(requests))

        async def client() -> None:
            for i, request in pending:
                await one(i, request)

        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(client)
        return time.perf_counter() - start

    limit = anyio.Semaphore(clients)
    rng = random.Random(seed)

    async def limited(i: int, request: BenchRequest) -> None:
        async with limit:
            await one(i, request)

    async with anyio.create_task_group() as tg:
        at = start
        for i, request in enumerate(requests):
            at += rng.expovariate(rate)
            await anyio.sleep(max(0.0, at - time.perf_counter()))
            tg.start_soon(limited, i, request)
    return time.perf_counter() - start


async def run_http(
    base_url: str,
    requests: list[BenchRequest],
    clients: int,
    api_key: str | None = None,
    endpoint: str = "completions",
    rate: float | None = None,
):
    """The workload over HTTP; returns (metrics, prefix hit rate)."""
    chat = endpoint == "chat"
    path = "/v1/chat/completions" if chat else "/v1/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timings = [RequestTiming(0.0) for _ in requests]
    cached = [0] * len(requests)
    async with client_session(base_url, clients, 600, headers) as session:
        async with session.get("/v1/models") as r:
            model = (await r.json())["data"][0]["id"]

        async def one(i: int, request: BenchRequest) -> None:
            timing = timings[i]
            body = {
                "model": model,
                "max_tokens": request.max_tokens,
                "temperature": 0,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            if chat:
                body["messages"] = [{"role": "user", "content": request.text}]
            else:
                body["prompt"] = request.prompt
            data = orjson.dumps(body)
            timing.arrival = time.perf_counter()
            try:
                async with session.post(path, data=data, headers=JSON) as r:
                    if r.status != 200:
                        timing.failed = True
                        await r.read()
                        return
                    async for raw in r.content:
                        line = raw.rstrip()
                        if not line.startswith(b"data: ") or line == b"data: [DONE]":
                            continue
                        chunk = orjson.loads(line[6:])
                        if _has_tokens(chunk, chat):
                            timing.token_times.append(time.perf_counter())
                        if chunk.get("usage"):
                            timing.output_tokens = chunk["usage"]["completion_tokens"]
                            cached[i] = chunk["usage"]["prompt_tokens_details"]["cached_tokens"]
            except aiohttp.ClientError:
                timing.failed = True

        duration = await _drive(requests, clients, one, rate)
    return _metrics(requests, timings, duration), _hit_rate(requests, cached, timings)


def _has_tokens(chunk: dict, chat: bool) -> bool:
    """A chunk that carries output: not a chat stream's opening role chunk (a token that
    decodes to no text yet is seen at the next chunk or the finish)."""
    choices = chunk["choices"]
    if not choices or not chat:
        return bool(choices)
    return bool(choices[0]["delta"].get("content")) or choices[0]["finish_reason"] is not None


async def run_in_process(
    engine: LLMEngine, requests: list[BenchRequest], clients: int, rate: float | None = None
):
    """The same workload on AsyncLLM in this process; returns (metrics, hit rate)."""
    timings = [RequestTiming(0.0) for _ in requests]
    cached = [0] * len(requests)
    async with AsyncLLM(engine) as llm:

        async def one(i: int, request: BenchRequest) -> None:
            timing = timings[i]
            params = SamplingParams(max_tokens=request.max_tokens, ignore_eos=True)
            timing.arrival = time.perf_counter()
            async for out in llm.generate(request.prompt, params):
                if out.new_token_ids:
                    timing.token_times.append(time.perf_counter())
                if out.finished:
                    timing.output_tokens = len(out.token_ids)
                    cached[i] = out.num_cached_tokens

        duration = await _drive(requests, clients, one, rate)
    return _metrics(requests, timings, duration), _hit_rate(requests, cached, timings)


def _metrics(requests, timings, duration: float) -> dict:
    """`trace.metrics.serving_metrics` plus vllm's token totals and total throughput."""
    out = serving_metrics(timings, duration)
    ok = [i for i, t in enumerate(timings) if not t.failed and t.token_times]
    out["input_tokens"] = sum(len(requests[i].prompt) for i in ok)
    out["output_tokens"] = sum(timings[i].output_tokens for i in ok)
    total = out["input_tokens"] + out["output_tokens"]
    out["total_token_throughput"] = total / duration if duration else 0.0
    return out


def _hit_rate(requests, cached, timings) -> float:
    ok = [i for i, t in enumerate(timings) if not t.failed]
    prompt = sum(len(requests[i].prompt) for i in ok)
    return sum(min(cached[i], len(requests[i].prompt)) for i in ok) / prompt if prompt else 0.0


def overhead(http: dict, local: dict) -> dict:
    """What HTTP costs over in-process: throughput ratio and p50 TTFT difference."""
    base = local["output_throughput"]
    return {
        "output_throughput_ratio": http["output_throughput"] / base if base else 0.0,
        "ttft_p50_overhead_ms": http["ttft_ms"]["p50"] - local["ttft_ms"]["p50"],
        "e2e_p50_overhead_ms": http["e2e_ms"]["p50"] - local["e2e_ms"]["p50"],
    }
