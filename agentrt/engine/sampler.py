"""Token sampling: greedy, temperature, top-k, top-p, per-request seeds."""

from __future__ import annotations

import torch

from agentrt.engine.logprobs import record_logprobs
from agentrt.engine.runner import SamplingFailed
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_output import accept_tokens, apply_constraints


class Sampler:
    """Samples one token per row of logits. Each seeded request owns a generator, so its
    samples do not depend on what else shares the batch. A row whose sampling raises
    fails only its request: the other rows are sampled, then `SamplingFailed` reports
    the failed ones."""

    def __init__(self, seed: int = 0) -> None:
        self._generators: dict[str, torch.Generator] = {}
        self._default = torch.Generator().manual_seed(seed)

    def forget(self, request_id: str) -> None:
        self._generators.pop(request_id, None)

    def sample(
        self,
        logits: torch.Tensor,
        params: list[SamplingParams],
        request_ids: list[str],
        seqs: list | None = None,
    ) -> list[int]:
        """logits: float32 [B, vocab] (any device); returns B token ids. With `seqs` (the
        rows' sequences) their constraints mask the logits and their logprobs are kept."""
        raw = logits
        constrained: list[int] = []
        if seqs is not None:
            logits, constrained = apply_constraints(logits, seqs)
        tokens = logits.argmax(dim=-1).tolist()
        errors: dict[str, Exception] = {}
        for row, (p, rid) in enumerate(zip(params, request_ids, strict=True)):
            if not p.greedy:
                try:
                    tokens[row] = self._sample_row(logits[row].cpu(), p, rid)
                except Exception as exc:  # this request's fault: the others still sample
                    errors[rid] = exc
        if seqs is not None:
            accept_tokens(constrained, seqs, tokens)
            asked = [i for i, s in enumerate(seqs) if s.logprobs is not None]
            if asked:
                record_logprobs(raw, asked, seqs, tokens)
        if errors:
            raise SamplingFailed(tokens, errors)
        return tokens

    def _generator(self, params: SamplingParams, request_id: str) -> torch.Generator:
        if params.seed is None:
            return self._default
        gen = self._generators.get(request_id)
        if gen is None:
            gen = self._generators[request_id] = torch.Generator().manual_seed(params.seed)
        return gen

    def _sample_row(self, logits: torch.Tensor, p: SamplingParams, request_id: str) -> int:
        logits = logits / p.temperature
        if 0 < p.top_k < logits.shape[-1]:
            kth = torch.topk(logits, p.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            before = sorted_probs.cumsum(-1) - sorted_probs
            cut = before >= p.top_p
            cut[0] = False  # the top token stays, even for a top_p that rounds to 0
            sorted_probs[cut] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self._generator(p, request_id)))
