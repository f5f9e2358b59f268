"""Engine-level per-request extras: grammar masks, min_tokens and logprobs, which batch
with plain requests and cost those nothing."""

from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import make_engine, run_to_completion
from serve_helpers import make_tiny_chat_model

from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams

SCHEMA = {
    "type": "object",
    "properties": {"unit": {"enum": ["c", "f"]}, "n": {"enum": [1, 2, 3]}},
    "required": ["unit", "n"],
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return make_engine(make_tiny_chat_model(tmp_path_factory.mktemp("so") / "tinychat"))


def test_schema_constrained_rows_batch_with_free_ones_unchanged(engine):
    prompts = [[5, 6, 7, 8], [9, 10, 11], [12, 13]]
    free = SamplingParams(max_tokens=6, ignore_eos=True)
    alone = run_to_completion(engine, [prompts[0]], free)[0]
    spec = StructuredOutputParams(kind="json_schema", spec=json.dumps(SCHEMA))
    constrained = SamplingParams(max_tokens=40, structured_output=spec)
    outs = run_to_completion(engine, prompts, [free, constrained, constrained])
    assert outs[0].token_ids == alone.token_ids
    for out in outs[1:]:
        value = json.loads(out.text)
        assert value["unit"] in ("c", "f") and value["n"] in (1, 2, 3)
        assert out.finish_reason == "stop" and out.token_ids[-1] in engine.eos_token_ids


def test_json_object_mode_gives_an_object(engine):
    spec = StructuredOutputParams(kind="json_object")
    out = run_to_completion(
        engine, [[3, 4, 5]], SamplingParams(max_tokens=30, structured_output=spec)
    )
    if out[0].finish_reason == "stop":
        assert isinstance(json.loads(out[0].text), dict)
    else:
        assert out[0].text.lstrip().startswith("{")


def test_bad_schema_is_rejected_at_add_request(engine):
    with pytest.raises(ValueError):
        StructuredOutputParams(kind="json_schema", spec="{not json")
    spec = StructuredOutputParams(kind="json_schema", spec='{"type": "no-such-type"}')
    with pytest.raises(ValueError):
        engine.add_request([1, 2, 3], SamplingParams(structured_output=spec))
    assert not engine.has_unfinished_requests()


def test_min_tokens_holds_back_stop_tokens_until_reached(engine):
    free = run_to_completion(engine, [[7, 8, 9]], SamplingParams(max_tokens=6, ignore_eos=True))
    stop = free[0].token_ids[1]
    params = SamplingParams(max_tokens=6, stop_token_ids=(stop,), ignore_eos=True)
    early = run_to_completion(engine, [[7, 8, 9]], params)[0]
    assert early.token_ids == free[0].token_ids[:2] and early.finish_reason == "stop"
    held = run_to_completion(engine, [[7, 8, 9]], params.model_copy(update={"min_tokens": 4}))[0]
    assert stop not in held.token_ids[:4] and len(held.token_ids) >= 4


def test_logprobs_are_the_model_log_softmax(engine):
    out = run_to_completion(engine, [[7, 8, 9]], SamplingParams(max_tokens=3, logprobs=2))[0]
    plain = run_to_completion(engine, [[7, 8, 9]], SamplingParams(max_tokens=3))[0]
    assert plain.logprobs is None and out.token_ids == plain.token_ids
    assert [e.token_id for e in out.logprobs] == out.token_ids
    for e in out.logprobs:
        assert len(e.top) == 2 and e.top[0][0] == e.token_id  # greedy takes the top one
        assert e.logprob == pytest.approx(e.top[0][1]) and e.top[1][1] <= e.logprob <= 0
        assert torch.tensor(e.logprob).exp() <= 1


def test_unpacked_bitmask_matches_xgrammar_apply():
    import xgrammar as xgr

    from agentrt.engine.structured_output import unpack_bitmask

    vocab = 100
    packed = xgr.allocate_token_bitmask(1, vocab)
    packed[0] = torch.randint(-(2**31), 2**31 - 1, (packed.shape[1],), dtype=torch.int32)
    logits = torch.randn(1, vocab)
    expected = logits.clone()
    xgr.apply_token_bitmask_inplace(expected, packed)
    allowed = unpack_bitmask(packed[0], vocab)
    assert torch.equal(torch.isinf(expected[0]), ~allowed)
