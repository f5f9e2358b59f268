"""A request fails only itself.

Bad values are refused when the request is made, with a one-line error naming the field
and the accepted range, beside healthy work. A request that still fails inside a step
(its sampling, the model or detokenizing: faults injected here into one request of a
busy batch) ends with finish reason ``error`` and its error, its KV released, while every
other request produces exactly the tokens it produces alone. Through `AsyncLLM` the
failure is an exception for that caller only; in the runtime, for that workflow only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import pytest
from engine_helpers import ByteTokenizer, make_engine, random_prompts, run_to_completion
from pydantic import ValidationError
from runtime_helpers import assert_kv_clean, tiny_engine, tiny_runtime

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.config import EngineConfig
from agentrt.engine.errors import RequestFailedError
from agentrt.engine.llm import LLM
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampler import Sampler
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.agent_options import AgentOptionError
from agentrt.graph.decorators import Workflow

VOCAB = 256  # the tiny models' vocabulary
GREEDY = SamplingParams(max_tokens=8, ignore_eos=True)
PROMPTS = random_prompts(5, 3, 24, VOCAB, seed=3)


@pytest.fixture
def engine(tiny_models) -> LLMEngine:
    return make_engine(tiny_models["llama"], kv_cache_tokens=512)


@pytest.fixture(scope="module")
def alone(tiny_models) -> list[list[int]]:
    """The greedy tokens of each of `PROMPTS`, each run alone on a fresh engine."""
    return [
        run_to_completion(make_engine(tiny_models["llama"], kv_cache_tokens=512), [p], GREEDY)[
            0
        ].token_ids
        for p in PROMPTS
    ]


def run_busy(
    engine: LLMEngine, add_faulty: Callable[[], list[str]], after_steps: int = 2
) -> tuple[list[str], list[str], dict[str, RequestOutput]]:
    """Start `PROMPTS`, step ``after_steps`` times, add the faulty request(s), and step
    until all are done, checking page accounting after every step. Returns the healthy
    ids, the faulty ids and every finished output."""
    assert engine.kv.allocator.num_free == engine.kv.num_pages  # the baseline: all free
    healthy = [engine.add_request(p, GREEDY) for p in PROMPTS]
    done: dict[str, RequestOutput] = {}
    for _ in range(after_steps):
        done |= {o.request_id: o for o in engine.step() if o.finished}
    faulty = add_faulty()
    while engine.has_unfinished_requests():
        done |= {o.request_id: o for o in engine.step() if o.finished}
        engine.check_integrity()  # a failed request's pages are not leaked
    return healthy, faulty, done


def assert_pages_back_to_baseline(engine: LLMEngine) -> None:
    """No request left, no page locked: every page free or an unlocked cached page."""
    assert not engine.batcher.running and not engine.batcher.waiting
    engine.check_integrity()
    kv = engine.kv
    assert kv.tree.evictable_pages == kv.tree.cached_pages, "a page stayed locked"
    assert kv.allocator.num_free + kv.tree.cached_pages == kv.num_pages


# -- the first line: refused when made --------------------------------------------------

BAD_VALUES = [
    {"seed": 2**64},
    {"seed": -1},
    {"temperature": 1e-45},
    {"temperature": math.nan},
    {"temperature": math.inf},
    {"temperature": -0.1},
    {"temperature": 1e3},
    {"top_p": math.nan},
    {"top_p": 0.0},
    {"top_p": 1.5},
    {"top_k": -1},
    {"top_k": 2**63},
    {"top_k": 1.5},
    {"max_tokens": 0},
    {"max_tokens": 2**64},
    {"max_tokens": math.inf},
    {"stop_token_ids": [2.5]},
    {"stop_token_ids": [-1]},
    {"stop_token_ids": [math.nan]},
    {"stop": [""]},
    {"ignore_eos": "perhaps"},
]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda b: f"{next(iter(b))}={b[next(iter(b))]}")
def test_bad_sampling_values_are_refused_in_one_line(bad):
    with pytest.raises(ValidationError) as info:
        SamplingParams(**bad)
    message = str(info.value)
    (field,) = bad
    assert "\n" not in message
    assert message.startswith(f"SamplingParams.{field} must be ") and "got " in message


def test_an_unknown_field_names_the_fields():
    with pytest.raises(ValidationError, match="no field 'temprature' \\(fields: temperature"):
        SamplingParams(temprature=0.5)


def test_the_edges_of_the_ranges_are_accepted_and_run(engine):
    edges = [
        SamplingParams(temperature=1e-5, seed=2**64 - 1, max_tokens=3, ignore_eos=True),
        SamplingParams(temperature=100.0, top_k=2**63 - 1, max_tokens=3, ignore_eos=True),
        SamplingParams(temperature=1.0, top_p=5e-324, seed=0, max_tokens=3, ignore_eos=True),
        SamplingParams(max_tokens=2**63 - 1, ignore_eos=True, stop_token_ids=[VOCAB - 1]),
    ]
    prompts = [[5, 6, 7]] * 3 + [[5] * 505]  # the last stops at the model's context
    outs = run_to_completion(engine, prompts, edges)
    assert all(o.error is None and o.finish_reason in ("length", "stop") for o in outs)
    assert_pages_back_to_baseline(engine)


def test_a_top_p_that_rounds_to_zero_keeps_the_top_token():
    import torch

    logits = torch.tensor([[0.5, 3.0, -1.0, 2.9]])
    params = SamplingParams(temperature=1.0, top_p=1e-300)
    assert {Sampler().sample(logits, [params], ["r"])[0] for _ in range(20)} == {1}


BAD_REQUESTS = [
    pytest.param({"prompt": [5, 6.5]}, TypeError, r"integers, got 6\.5 \(float\)", id="float-id"),
    pytest.param({"prompt": [5, math.nan]}, TypeError, "integers, got nan", id="nan-id"),
    pytest.param({"prompt": [5, "6"]}, TypeError, "integers, got '6'", id="str-id"),
    pytest.param(
        {"prompt": [5, VOCAB]}, ValueError, r"\[0, 256\), got 256 at position 1", id="vocab"
    ),
    pytest.param({"prompt": [-1, 5]}, ValueError, "got -1 at position 0", id="negative-id"),
    pytest.param({"prompt": [5, 2**64]}, ValueError, "got 18446744073709551616", id="huge-id"),
    pytest.param({"prompt": None}, TypeError, "a prompt is a string or a list", id="none"),
    pytest.param(
        {"params": SamplingParams(stop_token_ids=[VOCAB])},
        ValueError,
        r"stop_token_ids must be token ids in \[0, 256\) for this model, got 256",
        id="stop-id-vocab",
    ),
    pytest.param(
        {"params": {"temperature": 0.5}}, TypeError, "a SamplingParams, got dict", id="dict"
    ),
    pytest.param({"prefix_len": -1}, ValueError, r"prefix_len .* \[0, 3\]", id="prefix-neg"),
    pytest.param({"prefix_len": 99}, ValueError, "got 99", id="prefix-long"),
    pytest.param({"prefix_len": 1.5}, ValueError, "got 1.5", id="prefix-float"),
    pytest.param({"request_id": 7}, TypeError, "request_id must be a non-empty string", id="rid"),
    pytest.param({"agent_id": ["a"]}, TypeError, "agent_id must be a string", id="agent"),
]


@pytest.fixture(scope="module")
def idle_engine(tiny_models) -> LLMEngine:
    """An engine that only refuses requests (each test leaves it as it found it)."""
    return make_engine(tiny_models["llama"], kv_cache_tokens=512)


@pytest.mark.parametrize(("bad", "error", "message"), BAD_REQUESTS)
def test_bad_requests_are_refused_at_add_request(idle_engine, bad, error, message):
    request = {"prompt": [5, 6, 7], "params": GREEDY, **bad}
    with pytest.raises(error, match=message) as info:
        idle_engine.add_request(**request)
    assert "\n" not in str(info.value)
    assert not (idle_engine.requests or idle_engine.batcher.waiting or idle_engine.batcher.running)


def test_refusals_leave_healthy_work_untouched(engine, alone):
    """Every bad value and request above, refused while a busy batch runs."""
    healthy = [engine.add_request(p, GREEDY) for p in PROMPTS]
    done: dict[str, RequestOutput] = {}
    refusals = [lambda bad=bad: SamplingParams(**bad) for bad in BAD_VALUES] + [
        lambda p=p: engine.add_request(**{"prompt": [5, 6, 7], "params": GREEDY, **p.values[0]})
        for p in BAD_REQUESTS
    ]
    for refuse in refusals:
        with pytest.raises((ValueError, TypeError)):
            refuse()
        done |= {o.request_id: o for o in engine.step() if o.finished}
        assert set(engine.requests) <= set(healthy)
    while engine.has_unfinished_requests():
        done |= {o.request_id: o for o in engine.step() if o.finished}
    assert [done[r].token_ids for r in healthy] == alone
    assert_pages_back_to_baseline(engine)


def test_the_sim_engine_checks_against_its_vocabulary():
    engine = LLMEngine.from_config(EngineConfig(backend="sim", kv_cache_tokens=4096))
    vocab = engine.vocab_size
    assert vocab is not None
    with pytest.raises(ValueError, match="stop_token_ids"):
        engine.add_request([101, 102], SamplingParams(stop_token_ids=[vocab]))
    with pytest.raises(TypeError, match="integers"):
        engine.add_request([101, 102.5])
    rid = engine.add_request([101, 102], SamplingParams(max_tokens=4))
    while engine.has_unfinished_requests():
        engine.step()
    assert rid not in engine.requests
    engine.check_integrity()


# -- the second line: a failure inside a step fails only its request --------------------


def faulty_params(**values) -> SamplingParams:
    """Values that validation would refuse, as a caller that skips it would pass them."""
    return SamplingParams.model_construct(max_tokens=8, ignore_eos=True, **values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temperature": 1.0, "seed": 2**64}, "Overflow"),
        ({"temperature": 1e-45}, "probability tensor"),
        ({"temperature": math.nan}, "probability tensor"),
    ],
)
def test_a_sampling_fault_fails_only_its_request(engine, alone, values, message):
    healthy, faulty, done = run_busy(
        engine, lambda: [engine.add_request([9, 10, 11, 12], faulty_params(**values))]
    )
    (bad,) = faulty
    assert done[bad].finish_reason == "error" and done[bad].finished
    assert done[bad].error.startswith("sampling failed: ") and message in done[bad].error
    assert done[bad].token_ids == []
    assert [done[r].token_ids for r in healthy] == alone
    assert all(done[r].error is None for r in healthy)
    assert_pages_back_to_baseline(engine)


@pytest.mark.parametrize("culprits", [1, 2])
def test_a_model_fault_fails_only_its_requests(engine, alone, culprits):
    # ids_checked promises in-vocabulary ids; these break it, so the forward pass raises
    def add() -> list[str]:
        return [
            engine.add_request([5, 6, 7] * (i + 3) + [VOCAB + i], GREEDY, ids_checked=True)
            for i in range(culprits)
        ]

    healthy, faulty, done = run_busy(engine, add)
    for rid in faulty:
        assert done[rid].finish_reason == "error"
        assert done[rid].error.startswith("model step failed: IndexError")
    assert [done[r].token_ids for r in healthy] == alone
    assert_pages_back_to_baseline(engine)


class FailingOnce(ModelRunner):
    """The engine's own runner, except that its first `execute` raises: a transient
    fault that no re-run repeats."""

    def __init__(self, inner: ModelRunner) -> None:
        self.inner = inner
        self.uses_compute_thread = inner.uses_compute_thread
        self.failures = 0

    def execute(self, batch: ScheduledBatch) -> list[int]:
        if not self.failures:
            self.failures += 1
            raise RuntimeError("transient")
        return self.inner.execute(batch)

    def forget(self, request_id: str) -> None:
        self.inner.forget(request_id)


def test_a_transient_model_fault_fails_nobody(engine, alone):
    engine.runner = runner = FailingOnce(engine.runner)
    outs = run_to_completion(engine, PROMPTS, GREEDY)
    assert runner.failures == 1
    assert [o.token_ids for o in outs] == alone and all(o.error is None for o in outs)
    assert_pages_back_to_baseline(engine)


class SmallTokenizer(ByteTokenizer):
    """A tokenizer that knows fewer ids than the model can sample (as padded
    vocabularies do): decoding a larger id raises."""

    LIMIT = 200

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        unknown = [i for i in ids if i >= self.LIMIT]
        if unknown:
            raise IndexError(f"token id {unknown[0]} is not in the vocabulary")
        return super().decode(ids, skip_special_tokens)


def test_a_detokenizing_fault_fails_only_its_request(engine, alone):
    engine.tokenizer = SmallTokenizer()
    outs = run_to_completion(engine, PROMPTS, GREEDY)
    failing = [i for i, tokens in enumerate(alone) if max(tokens) >= SmallTokenizer.LIMIT]
    assert failing and len(failing) < len(PROMPTS)  # both kinds in the batch
    for i, out in enumerate(outs):
        if i in failing:
            first_bad = next(k for k, t in enumerate(alone[i]) if t >= SmallTokenizer.LIMIT)
            assert out.finish_reason == "error"
            assert out.error.startswith("detokenizing failed: IndexError")
            assert out.token_ids == alone[i][: first_bad + 1]
        else:
            assert out.error is None and out.token_ids == alone[i]
    assert_pages_back_to_baseline(engine)


def test_llm_generate_returns_the_failure_beside_the_others(tiny_models, alone):
    llm = LLM.__new__(LLM)
    llm.engine = make_engine(tiny_models["llama"], kv_cache_tokens=512)
    params = [GREEDY] * len(PROMPTS) + [faulty_params(temperature=1.0, seed=2**64)]
    outs = llm.generate([*PROMPTS, [9, 10, 11]], params)
    assert [o.token_ids for o in outs[:-1]] == alone
    assert outs[-1].finish_reason == "error" and "sampling failed" in outs[-1].error
    assert_pages_back_to_baseline(llm.engine)


# -- through AsyncLLM and the runtime -----------------------------------------------------


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_async_llm_raises_for_the_failed_request_only(engine, alone):
    results: dict[int, list[int]] = {}
    errors: dict[str, BaseException] = {}

    async def healthy(i: int) -> None:
        results[i] = (await llm.complete(PROMPTS[i], GREEDY)).token_ids

    async def failing(name: str, prompt: list[int], params: SamplingParams) -> None:
        await anyio.sleep(0.005)  # while the others run
        try:
            await llm.complete(prompt, params)
        except Exception as exc:  # recorded and asserted below
            errors[name] = exc

    async with AsyncLLM(engine) as llm:
        async with anyio.create_task_group() as tg:
            for i in range(len(PROMPTS)):
                tg.start_soon(healthy, i)
            tg.start_soon(failing, "step", [9, 10, 11], faulty_params(temperature=1e-45))
            bad_stop = SamplingParams(stop_token_ids=[VOCAB])
            tg.start_soon(failing, "add", [9, 10, 11], bad_stop)
        after = await llm.complete(PROMPTS[0], GREEDY)  # the loop is alive
    assert isinstance(errors["step"], RequestFailedError)
    assert "sampling failed: RuntimeError: probability tensor" in str(errors["step"])
    assert isinstance(errors["add"], ValueError) and "stop_token_ids" in str(errors["add"])
    assert [results[i] for i in range(len(PROMPTS))] == alone
    assert after.token_ids == alone[0]
    assert_pages_back_to_baseline(engine)


POISON = "~"  # ByteTokenizer id 3 + 126


class PoisonedRunner(FailingOnce):
    """The engine's own runner, except that a batch holding a prompt with the poison
    token fails as a whole (as a model fault triggered by one request's data would)."""

    def execute(self, batch: ScheduledBatch) -> list[int]:
        poison = ByteTokenizer().encode(POISON)[0]
        if any(poison in item.seq.prompt_token_ids for item in batch.items):
            self.failures += 1
            raise RuntimeError("kernel fault")
        return self.inner.execute(batch)


@pytest.mark.anyio
async def test_a_failed_request_fails_only_its_workflow(tiny_models):
    engine = tiny_engine(tiny_models, kv_cache_tokens=1024)
    engine.runner = runner = PoisonedRunner(engine.runner)
    wf = Workflow("isolated")

    @wf.agent(prefix="answer briefly", max_tokens=6, ignore_eos=True)
    async def ask(ctx):
        if ctx.input == "bad value":
            return await ctx.gen("hello", seed=2**64)
        return await ctx.gen(ctx.input)

    @wf.agent(prefix="summarise", after=[ask], max_tokens=4, ignore_eos=True)
    async def summary(ctx):
        return await ctx.gen(ctx.results["ask"])

    inputs = ["one", f"poisoned {POISON}", "two", "bad value", "three"]
    async with tiny_runtime(engine) as rt:
        results = await rt.run(wf, inputs)
    assert [r.ok for r in results] == [True, False, True, False, True]
    async with tiny_runtime(tiny_engine(tiny_models, kv_cache_tokens=1024)) as rt:
        healthy_alone = await rt.run(wf, ["one", "two", "three"])
    assert [results[i].results for i in (0, 2, 4)] == [r.results for r in healthy_alone]
    assert isinstance(results[1].error, RequestFailedError)
    assert "model step failed: RuntimeError: kernel fault" in str(results[1].error)
    assert isinstance(results[3].error, AgentOptionError) and "SamplingParams.seed" in str(
        results[3].error
    )
    assert runner.failures >= 1
    assert_kv_clean(engine)
