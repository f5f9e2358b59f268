"""Runs batches on our torch model over a preallocated paged KV cache (CPU or CUDA)."""

from __future__ import annotations

import torch

from agentrt.engine.batcher import ScheduledBatch
from agentrt.engine.cpu_memory import keep_freed_memory
from agentrt.engine.kv_transfer import TorchKVTransfer, allocate_host_caches
from agentrt.engine.model import CausalLM, build_attention_metadata
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampler import Sampler
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_output import ConstraintBuilder
from agentrt.engine.structured_params import StructuredOutputParams


class TorchModelRunner(ModelRunner):
    """Samples from the model's logits, masked by each request's constraints, which
    ``grammars`` builds (grammars compiled with the model's tokenizer)."""

    uses_compute_thread = True

    def __init__(
        self,
        model: CausalLM,
        num_pages: int,
        page_size: int,
        device: torch.device,
        dtype: torch.dtype,
        grammars: ConstraintBuilder,
        seed: int = 0,
        num_host_pages: int = 0,
        batch_invariant: bool = False,
    ) -> None:
        if device.type == "cpu":
            keep_freed_memory()
        self.model = model
        self.page_size = page_size
        self.device = device
        self.batch_invariant = batch_invariant
        self.grammars = grammars
        slots = num_pages * page_size
        shape = (model.num_kv_heads, slots, model.head_dim)  # head-major, see attention.py
        self.kv_caches = [
            (
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            )
            for _ in range(model.num_layers)
        ]
        self.sampler = Sampler(seed)
        self.host_kv_caches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.kv_transfer: TorchKVTransfer | None = None
        if num_host_pages > 0:
            self.host_kv_caches = allocate_host_caches(self.kv_caches, num_host_pages, page_size)
            self.kv_transfer = TorchKVTransfer(self.kv_caches, self.host_kv_caches, page_size)

    @property
    def kv_bytes_per_token(self) -> int:
        k, _ = self.kv_caches[0]
        return 2 * len(self.kv_caches) * k.shape[0] * k.shape[2] * k.element_size()

    @torch.inference_mode()
    def execute(self, batch: ScheduledBatch) -> list[int]:
        ids: list[int] = []
        positions: list[int] = []
        logits_indices: list[int] = []
        for item in batch.items:
            start = item.seq.num_computed_tokens
            end = start + item.num_new_tokens
            ids.extend(item.seq.token_ids[start:end])
            positions.extend(range(start, end))
            if item.samples:
                logits_indices.append(len(ids) - 1)
        meta = build_attention_metadata(
            [item.seq.block_table for item in batch.items],
            [item.seq.num_computed_tokens for item in batch.items],
            [item.num_new_tokens for item in batch.items],
            self.page_size,
            self.device,
            self.batch_invariant,
        )
        logits = self.model(
            torch.tensor(ids, device=self.device),
            torch.tensor(positions, device=self.device),
            self.kv_caches,
            meta,
            torch.tensor(logits_indices, dtype=torch.long, device=self.device),
        )
        sampling = [item.seq for item in batch.items if item.samples]
        return self.sampler.sample(
            logits, [s.params for s in sampling], [s.request_id for s in sampling], sampling
        )

    def forget(self, request_id: str) -> None:
        self.sampler.forget(request_id)

    def constraints(self, params: SamplingParams) -> tuple:
        return self.grammars.build(params)

    def compile_grammar(self, spec: StructuredOutputParams) -> None:
        self.grammars.compile(spec)
