"""Tiny random-weight Hugging Face models of every supported family, for tests.

Each family differs from the others in the ways our model code must respect: rope_theta,
tied or untied embeddings, Qwen2's q/k/v bias, Qwen3's q/k norms and a head_dim that is
not hidden_size / num_attention_heads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

FAMILIES = ("llama", "mistral", "qwen2", "qwen3")

_CLASSES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM),
}

_COMMON: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    # Large enough that greedy argmax rarely meets near-ties between logits.
    "initializer_range": 0.2,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

_PER_FAMILY: dict[str, dict[str, Any]] = {
    "llama": {"rope_theta": 10_000.0, "tie_word_embeddings": True},
    "mistral": {"rope_theta": 50_000.0, "tie_word_embeddings": False, "sliding_window": None},
    "qwen2": {"rope_theta": 1_000_000.0, "tie_word_embeddings": True},
    "qwen3": {"rope_theta": 500_000.0, "tie_word_embeddings": False, "head_dim": 32},
}


def tiny_config(family: str, **overrides: Any) -> PretrainedConfig:
    """The config :func:`make_tiny_model` uses for ``family``, with ``overrides`` applied."""
    if family not in _CLASSES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    config_class, _ = _CLASSES[family]
    return config_class(**{**_COMMON, **_PER_FAMILY[family], **overrides})


def make_tiny_model(family: str, path: Path, seed: int = 0, **overrides: Any) -> Path:
    """Build a tiny float32 model of ``family`` with weights drawn from ``seed``, save it
    to ``path`` as safetensors (no tokenizer files) and return ``path``."""
    config = tiny_config(family, **overrides)
    _, model_class = _CLASSES[family]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config).to(torch.float32)
        _perturb_constant_init(model)
    model.save_pretrained(path)
    return path


@torch.no_grad()
def _perturb_constant_init(model: PreTrainedModel) -> None:
    # HF initialises norms to 1 and biases to 0; random values make a model that skips
    # a norm or a bias produce different logits, so tests can see the mistake.
    for name, param in model.named_parameters():
        if name.endswith("bias"):
            param.normal_(0.0, 0.1)
        elif "norm" in name:
            param.normal_(1.0, 0.1)
