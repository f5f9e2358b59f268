"""Bad input gets a clear error, and the engine keeps serving everyone else."""

from __future__ import annotations

import pytest
from engine_helpers import make_engine, random_prompts, run_to_completion
from pydantic import ValidationError

from agentrt.engine.errors import ModelNotFoundError, PromptTooLongError
from agentrt.engine.llm import LLM
from agentrt.engine.sampling_params import SamplingParams

PARAMS = SamplingParams(max_tokens=5, ignore_eos=True)


@pytest.fixture
def engine(tiny_models):
    return make_engine(tiny_models["llama"], kv_cache_tokens=256)


def test_empty_prompt_rejected_others_served(engine):
    good = engine.add_request([5, 6, 7], PARAMS)
    with pytest.raises(ValueError, match="empty prompt"):
        engine.add_request([], PARAMS)
    (out,) = run_to_completion(engine, [[8, 9]], PARAMS)
    assert len(out.token_ids) == 5
    assert good not in engine.requests  # finished alongside


def test_prompt_longer_than_kv_capacity(engine):
    with pytest.raises(PromptTooLongError, match="256"):
        engine.add_request(list(range(3, 250)) * 2, PARAMS)
    (out,) = run_to_completion(engine, [[8, 9, 10]], PARAMS)
    assert out.finish_reason == "length"
    engine.check_integrity()


def test_prompt_longer_than_model_context(tiny_models):
    engine = make_engine(tiny_models["llama"], kv_cache_tokens=4096)  # model context is 512
    with pytest.raises(PromptTooLongError, match="context"):
        engine.add_request([5] * 600, PARAMS)
    assert run_to_completion(engine, [[5] * 20], PARAMS)[0].finish_reason == "length"


def test_output_stops_at_model_context(tiny_models):
    engine = make_engine(tiny_models["llama"], kv_cache_tokens=4096)
    (out,) = run_to_completion(engine, [[5] * 505], SamplingParams(max_tokens=50, ignore_eos=True))
    assert out.finish_reason == "length" and len(out.token_ids) == 7


def test_token_ids_outside_vocab(engine):
    with pytest.raises(ValueError, match="token ids"):
        engine.add_request([5, 99999], PARAMS)


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"max_tokens": 0},
        {"stop": [""]},
        {"unknown_field": 1},
    ],
)
def test_invalid_sampling_params(bad):
    with pytest.raises(ValidationError):
        SamplingParams(**bad)


def test_text_prompt_without_tokenizer(engine):
    with pytest.raises(ValueError, match="no tokenizer"):
        engine.add_request("hello", PARAMS)


def test_duplicate_request_id(engine):
    engine.add_request([5, 6], PARAMS, request_id="a")
    with pytest.raises(ValueError, match="duplicate"):
        engine.add_request([5, 6], PARAMS, request_id="a")


def test_unknown_model_path(tmp_path):
    with pytest.raises(ModelNotFoundError):
        LLM(str(tmp_path / "no-such-model"))


def test_generate_is_all_or_nothing(tiny_models):
    llm = LLM.__new__(LLM)
    llm.engine = make_engine(tiny_models["llama"])
    with pytest.raises(ValueError, match="empty prompt"):
        llm.generate([[5, 6, 7], [8, 9], []], PARAMS)
    assert not llm.engine.has_unfinished_requests()
    llm.engine.check_integrity()
    assert llm.engine.kv.tree.evictable_pages == llm.engine.kv.tree.cached_pages


def test_abort_releases_kv_locks(engine):
    prompts = random_prompts(3, 20, 30, 256, seed=1)
    ids = [engine.add_request(p, SamplingParams(max_tokens=50, ignore_eos=True)) for p in prompts]
    for _ in range(3):
        engine.step()
    engine.abort(ids[0])
    engine.abort(ids[1])
    outs = engine.step()
    aborted = [o for o in outs if o.finish_reason == "abort"]
    assert {o.request_id for o in aborted} == {ids[0], ids[1]}
    engine.check_integrity()
    engine.abort(ids[2])
    engine.step()
    assert not engine.has_unfinished_requests()
    tree = engine.kv.tree
    assert tree.evictable_pages == tree.cached_pages, "an aborted request left pages locked"
    engine.check_integrity()
