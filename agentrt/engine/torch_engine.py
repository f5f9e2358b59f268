"""The torch side of building an engine: our model on real weights, run by `TorchModelRunner`.

`LLMEngine.from_config` imports this module only for the built-in backend, so the engine
core and the simulator never load torch.
"""

from __future__ import annotations

import torch

from agentrt.engine import loader
from agentrt.engine.config import EngineConfig
from agentrt.engine.model import CausalLM
from agentrt.engine.runner import BackendParts
from agentrt.engine.structured_output import ConstraintBuilder
from agentrt.engine.torch_runner import TorchModelRunner


def resolve_dtype(name: str) -> torch.dtype:
    """The torch dtype named by an `EngineConfig.dtype` ("auto": bfloat16)."""
    if name == "auto":
        return torch.bfloat16
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16")
    return dtype


def torch_parts(config: EngineConfig) -> BackendParts:
    """Load the model named in `config` and its runner (run it on the compute thread: it
    allocates the KV cache and moves weights to the device)."""
    device = torch.device(config.device)
    dtype = resolve_dtype(config.dtype)
    model_dir = loader.resolve_model_dir(config.model)
    hf_config = loader.load_config(model_dir)
    family = loader.model_family(hf_config)
    max_positions = hf_config.max_position_embeddings
    model = CausalLM(hf_config, family, max_positions)
    model.load_hf_weights(loader.load_weights(model_dir, torch.float32, "cpu"))
    model.to(device=device, dtype=dtype)
    model.optimize_for_device()
    if config.batch_invariant:
        model.make_batch_invariant()
    tokenizer = loader.load_tokenizer(model_dir)
    eos = hf_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    runner = TorchModelRunner(
        model,
        config.num_pages,
        config.page_size,
        device,
        dtype,
        ConstraintBuilder(tokenizer, eos_ids, hf_config.vocab_size),
        num_host_pages=config.num_host_pages or 0,
        batch_invariant=config.batch_invariant,
    )
    return BackendParts(runner, tokenizer, eos_ids, max_positions, hf_config.vocab_size)
