"""Log-probabilities of sampled tokens, recorded only for requests that ask."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One output token: its log-probability under the model (raw logits, before
    temperature or masks) and the `top` most likely tokens with theirs."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...]


def record_logprobs(logits: torch.Tensor, rows: list[int], seqs, tokens: list[int]) -> None:
    """Append a `TokenLogprob` to `seqs[i].logprobs` for each row index i in `rows`."""
    logp = torch.log_softmax(logits[rows].float(), dim=-1)
    k = max(seqs[i].params.logprobs for i in rows)
    top_vals, top_ids = logp.topk(k, dim=-1) if k else (None, None)
    chosen = logp.gather(1, torch.tensor([[tokens[i]] for i in rows], device=logp.device))
    chosen_l = chosen.squeeze(1).tolist()
    top_v = top_vals.tolist() if k else None
    top_i = top_ids.tolist() if k else None
    for j, i in enumerate(rows):
        n = seqs[i].params.logprobs
        top = tuple(zip(top_i[j][:n], top_v[j][:n], strict=True)) if n else ()
        seqs[i].logprobs.append(TokenLogprob(tokens[i], chosen_l[j], top))
