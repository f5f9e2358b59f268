"""The `sim` backend: the parts of an `LLMEngine` whose runner is the cost model.

No weights and no KV tensors; `clock.now()` is virtual seconds. The tokenizer (of
`config.model`) is loaded the first time a text prompt needs it.
"""

from __future__ import annotations

from agentrt.engine.config import EngineConfig
from agentrt.engine.cost_model.kv_transfer import SimKVTransfer
from agentrt.engine.cost_model.profile import load_profile
from agentrt.engine.cost_model.runner import CostModelRunner
from agentrt.engine.runner import BackendParts


def sim_parts(config: EngineConfig) -> BackendParts:
    """A cost-model runner for `config` with the profile `config.profile`."""
    profile = load_profile(config.profile)
    runner = CostModelRunner(profile, vocab_size=profile.vocab_size)
    runner.kv_transfer = SimKVTransfer(runner, profile.kv_bytes_per_token * config.page_size)

    def load_tokenizer():
        from agentrt.engine import loader  # transformers: only for text prompts

        return loader.load_tokenizer(loader.resolve_model_dir(config.model))

    return BackendParts(
        runner,
        vocab_size=profile.vocab_size,
        clock=runner.clock,
        load_tokenizer=load_tokenizer,
    )
