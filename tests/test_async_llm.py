"""The async API: concurrent requests share batches; cancellation releases KV."""

from __future__ import annotations

import anyio
import pytest
from engine_helpers import hf_greedy, load_hf, make_engine, random_prompts

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.outputs import final_output
from agentrt.engine.sampling_params import SamplingParams

pytestmark = pytest.mark.anyio

PARAMS = SamplingParams(max_tokens=8, ignore_eos=True)


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_concurrent_requests_match_hf(tiny_models):
    engine = make_engine(tiny_models["qwen2"])
    prompts = random_prompts(6, 3, 30, 256, seed=11)
    results: dict[int, list[int]] = {}

    async def one(i: int) -> None:
        await anyio.sleep(0.001 * i)  # arrivals spread over time
        results[i] = (await llm.complete(prompts[i], PARAMS)).token_ids

    async with AsyncLLM(engine) as llm, anyio.create_task_group() as tg:
        for i in range(len(prompts)):
            tg.start_soon(one, i)
    hf = load_hf(tiny_models["qwen2"])
    for i, prompt in enumerate(prompts):
        assert results[i] == hf_greedy(hf, prompt, 8)
    assert max(engine.stats.batch_sizes) > 1
    engine.check_integrity()


async def test_streaming_yields_deltas(tiny_models):
    engine = make_engine(tiny_models["llama"])
    async with AsyncLLM(engine) as llm:
        deltas = [out.new_token_ids async for out in llm.generate([5, 6, 7], PARAMS)]
    assert sum(len(d) for d in deltas) == 8 and all(len(d) == 1 for d in deltas)


async def test_cancelled_request_releases_kv_locks(tiny_models):
    engine = make_engine(tiny_models["llama"])
    long = SamplingParams(max_tokens=400, ignore_eos=True)
    async with AsyncLLM(engine) as llm:
        with anyio.move_on_after(0.2):
            async for _ in llm.generate(list(range(5, 60)), long):
                pass
        other = await llm.complete([9, 10, 11], PARAMS)  # the engine keeps serving
    assert len(other.token_ids) == 8
    assert not engine.has_unfinished_requests()
    engine.check_integrity()
    assert engine.kv.tree.evictable_pages == engine.kv.tree.cached_pages


async def test_generate_outside_context_is_an_error(tiny_models):
    llm = AsyncLLM(make_engine(tiny_models["llama"]))
    with pytest.raises(RuntimeError, match="async with"):
        await llm.complete([5, 6], PARAMS)


async def test_closing_right_after_a_cancel_still_releases_its_kv(tiny_models):
    """A stream abandoned just before the engine loop stops (a failed workflow's sibling
    at the end of a run) is aborted at close, not left holding its KV."""
    from contextlib import aclosing

    engine = make_engine(tiny_models["llama"])
    prompt = random_prompts(1, 40, 41, 256, seed=3)[0]
    for _ in range(5):
        async with AsyncLLM(engine) as llm:
            params = SamplingParams(max_tokens=200, ignore_eos=True)
            async with aclosing(llm.generate(prompt, params)) as stream:
                async for _out in stream:
                    break  # abandoned: generate's cleanup queues the abort
        assert not engine.has_unfinished_requests()
        engine.check_integrity()
        assert (
            engine.kv.allocator.num_free + engine.kv.tree.cached_pages
            == engine.kv.allocator.num_pages
        )


@pytest.mark.parametrize(
    ("wait", "follow_up", "held"),
    [(1.0, True, True), (0.0, True, False), (1.0, False, False)],
    ids=["waits", "no wait set", "no follow-up expected"],
)
async def test_arrival_wait_holds_the_next_step_for_a_clients_next_request(
    tiny_models, wait, follow_up, held
):
    engine = make_engine(tiny_models["llama"])
    steps: dict[str, int] = {}

    async def running() -> None:
        await llm.complete([5, 6, 7], SamplingParams(max_tokens=60, ignore_eos=True))

    async def closed_loop() -> None:
        short = SamplingParams(max_tokens=1)
        await final_output(llm.generate([8, 9], short, follow_up=follow_up))
        steps["finished"] = engine.stats.steps
        await anyio.sleep(0.2)  # the client's round trip
        steps["next added"] = engine.stats.steps
        await llm.complete([10, 11], SamplingParams(max_tokens=2, ignore_eos=True))

    with anyio.fail_after(20):
        async with AsyncLLM(engine, arrival_wait=wait) as llm, anyio.create_task_group() as tg:
            tg.start_soon(running)
            await anyio.sleep(0)
            tg.start_soon(closed_loop)
    if held:  # no step ran while the running request waited for the next arrival
        assert steps["next added"] == steps["finished"]
    else:
        assert steps["next added"] > steps["finished"]
    engine.check_integrity()


async def test_arrival_wait_is_bounded_when_no_request_comes(tiny_models):
    engine = make_engine(tiny_models["llama"])
    async with AsyncLLM(engine, arrival_wait=0.05) as llm, anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            tg.start_soon(llm.complete, [8, 9], SamplingParams(max_tokens=1))
            out = await llm.complete([5, 6, 7], SamplingParams(max_tokens=20, ignore_eos=True))
    assert len(out.token_ids) == 20
    engine.check_integrity()
