"""Our forward pass over paged KV for the supported decoder-only families."""

from agentrt.engine.model.attention_metadata import AttentionMetadata, build_attention_metadata
from agentrt.engine.model.causal_lm import CausalLM

__all__ = ["AttentionMetadata", "CausalLM", "build_attention_metadata"]
