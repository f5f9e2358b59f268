"""Decoder-only transformer (Llama, Mistral, Qwen2, Qwen3) over a paged KV cache.

Weights keep Hugging Face parameter names on load; q/k/v and gate/up projections are
fused into single matmuls. The forward takes a flat batch of tokens from many sequences
(decodes and prefill chunks together) and returns logits only where the caller samples.
"""

from __future__ import annotations

import torch
from torch import nn

from agentrt.engine.model.attention import paged_attention
from agentrt.engine.model.attention_metadata import AttentionMetadata
from agentrt.engine.model.decode_stack import DecodeStack, StackShape
from agentrt.engine.model.kernels import PLAIN, Kernels, kernels_for
from agentrt.engine.model.layers import RMSNorm, RotaryEmbedding
from agentrt.engine.model.linear import (
    Linear,
    pack_linears,
    split_long_reductions,
    use_matvec,
)


class DecoderLayer(nn.Module):
    def __init__(self, config, head_dim: int, qkv_bias: bool, qk_norm: bool) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = head_dim
        self.q_size = self.num_heads * head_dim
        self.kv_size = self.num_kv_heads * head_dim
        self.scale = head_dim**-0.5
        self.input_norm = RMSNorm(hidden, config.rms_norm_eps)
        self.post_attention_norm = RMSNorm(hidden, config.rms_norm_eps)
        self.qkv_proj = Linear(hidden, self.q_size + 2 * self.kv_size, bias=qkv_bias)
        self.o_proj = Linear(self.q_size, hidden, bias=False)
        self.q_norm = RMSNorm(head_dim, config.rms_norm_eps) if qk_norm else None
        self.k_norm = RMSNorm(head_dim, config.rms_norm_eps) if qk_norm else None
        self.gate_up_proj = Linear(hidden, 2 * config.intermediate_size, bias=False)
        self.down_proj = Linear(config.intermediate_size, hidden, bias=False)
        self.intermediate_size = config.intermediate_size

    def forward(
        self,
        h: torch.Tensor,
        delta: torch.Tensor | None,
        positions: torch.Tensor,
        rope: RotaryEmbedding,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
        kernels: Kernels,
    ) -> torch.Tensor:
        """Adds the previous layer's output `delta` to the residual stream `h` (in place)
        and returns this layer's own output, which the next layer (or the final norm)
        adds in turn: each residual add is fused with the norm that follows it."""
        tokens = h.shape[0]
        x = self.input_norm.normalize(h, delta, kernels)
        q, k, v = self.qkv_proj(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(tokens, self.num_heads, self.head_dim)
        k = k.view(tokens, self.num_kv_heads, self.head_dim)
        v = v.view(tokens, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q = self.q_norm.normalize(q.contiguous(), None, kernels)
            k = self.k_norm.normalize(k.contiguous(), None, kernels)
        kernels.rope_(q, k, positions, rope.cos, rope.sin)
        attn = paged_attention(q, k, v, k_cache, v_cache, meta, self.scale, kernels)
        attn = self.o_proj(attn.reshape(tokens, self.q_size))
        x = self.post_attention_norm.normalize(h, attn, kernels)
        return self.down_proj(kernels.silu_mul(self.gate_up_proj(x)))

    __call__ = forward  # as `Linear.__call__`: no hooks, no hook dispatch

    def stack_weights(self) -> list[torch.Tensor | None]:
        """This layer's weights in `DecodeStack`'s order (the linears' matvec copies)."""
        q_norm, k_norm = self.q_norm, self.k_norm
        return [
            self.input_norm.weight,
            self.qkv_proj.matvec_args[0],
            self.qkv_proj.bias,
            self.o_proj.matvec_args[0],
            self.post_attention_norm.weight,
            self.gate_up_proj.matvec_args[0],
            self.down_proj.matvec_args[0],
            q_norm.weight if q_norm is not None else None,
            k_norm.weight if k_norm is not None else None,
        ]


class CausalLM(nn.Module):
    """Our implementation of the supported families; see `loader.SUPPORTED_ARCHITECTURES`."""

    def __init__(self, config, family: str, max_positions: int) -> None:
        super().__init__()
        self.config = config
        self.family = family
        self.head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        qkv_bias = family == "qwen2" or bool(getattr(config, "attention_bias", False))
        qk_norm = family == "qwen3"
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DecoderLayer(config, self.head_dim, qkv_bias, qk_norm)
            for _ in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.tie_word_embeddings = bool(getattr(config, "tie_word_embeddings", False))
        self.lm_head = Linear(config.hidden_size, config.vocab_size, bias=False)
        if self.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.rope = RotaryEmbedding(config, self.head_dim, max_positions)
        self.kernels: Kernels = PLAIN
        self.decode_stack: DecodeStack | None = None
        self.requires_grad_(False)

    @property
    def num_kv_heads(self) -> int:
        return self.config.num_key_value_heads

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        meta: AttentionMetadata,
        logits_indices: torch.Tensor,
    ) -> torch.Tensor:
        """input_ids, positions: [T]; returns float32 logits [len(logits_indices), vocab]."""
        h = self.embed_tokens(input_ids)
        stack = self.decode_stack
        if stack is not None and stack.runs(meta, h.shape[0]):
            tables = (self.rope.cos, self.rope.sin)
            delta = stack(h, positions, kv_caches, meta, tables, self.layers[0].scale)
        else:
            delta = None
            for layer, (k_cache, v_cache) in zip(self.layers, kv_caches, strict=True):
                delta = layer(h, delta, positions, self.rope, k_cache, v_cache, meta, self.kernels)
        assert delta is not None
        last = h[logits_indices]
        return self.lm_head(self.norm.normalize(last, delta[logits_indices], self.kernels)).float()

    def optimize_for_device(self) -> None:
        """Device-specific fast paths once weights are in place (CPU: packed linears, the
        fused kernels of `kernels.py` and their matvec for decode steps)."""
        pack_linears(self)
        self.kernels = kernels_for(self.embed_tokens.weight.device)
        linears = sum(isinstance(m, Linear) for m in self.modules())
        if use_matvec(self, self.kernels) == linears:  # the stack reads the matvec copies
            shape = StackShape(
                self.config.num_attention_heads,
                self.config.num_key_value_heads,
                self.head_dim,
                self.config.intermediate_size,
                self.config.rms_norm_eps,
            )
            layers = [layer.stack_weights() for layer in self.layers]
            self.decode_stack = self.kernels.decode_stack(layers, shape)

    def make_batch_invariant(self) -> None:
        """Give every token the same bits whatever it is batched with: matmuls reduce over
        at most `linear.MAX_INVARIANT_K` and never switch kernels by row count; attention
        is switched by the metadata."""
        use_matvec(self, None)
        self.decode_stack = None
        split_long_reductions(self)

    def load_hf_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy Hugging Face-named tensors into our (partly fused) parameters."""
        pending = dict(weights)

        def take(name: str) -> torch.Tensor:
            try:
                return pending.pop(name)
            except KeyError:
                raise KeyError(f"checkpoint lacks weight {name!r}") from None

        self.embed_tokens.weight.copy_(take("model.embed_tokens.weight"))
        self.norm.weight.copy_(take("model.norm.weight"))
        if self.tie_word_embeddings:
            pending.pop("lm_head.weight", None)
        else:
            self.lm_head.weight.copy_(take("lm_head.weight"))
        for i, layer in enumerate(self.layers):
            p = f"model.layers.{i}."
            layer.input_norm.weight.copy_(take(p + "input_layernorm.weight"))
            layer.post_attention_norm.weight.copy_(take(p + "post_attention_layernorm.weight"))
            a = p + "self_attn."
            layer.qkv_proj.weight.copy_(
                torch.cat([take(a + f"{n}_proj.weight") for n in ("q", "k", "v")])
            )
            if layer.qkv_proj.bias is not None:
                layer.qkv_proj.bias.copy_(
                    torch.cat([take(a + f"{n}_proj.bias") for n in ("q", "k", "v")])
                )
            layer.o_proj.weight.copy_(take(a + "o_proj.weight"))
            if layer.q_norm is not None:
                layer.q_norm.weight.copy_(take(a + "q_norm.weight"))
                layer.k_norm.weight.copy_(take(a + "k_norm.weight"))
            m = p + "mlp."
            layer.gate_up_proj.weight.copy_(
                torch.cat([take(m + "gate_proj.weight"), take(m + "up_proj.weight")])
            )
            layer.down_proj.weight.copy_(take(m + "down_proj.weight"))
        leftovers = [k for k in pending if not k.endswith("rotary_emb.inv_freq")]
        if leftovers:
            raise ValueError(f"unexpected weights in checkpoint: {leftovers[:5]}")
