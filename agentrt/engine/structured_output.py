"""Per-request token constraints applied by the sampler: grammars and `min_tokens`.

`ConstraintBuilder` (the torch runner's) compiles a `structured_output` grammar once per
distinct spec with xgrammar and gives each request its own matcher, whose bitmask sets
every forbidden token to -inf (constrained rows batch with free ones). `min_tokens` bans
EOS and the stop ids until that many tokens are out. Other requests pay nothing.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection

import torch

from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams


class TokenConstraint(ABC):
    """A per-request mask over the next token, advanced by every sampled token."""

    @abstractmethod
    def mask(self, logits: torch.Tensor, num_output_tokens: int) -> None:
        """Set forbidden entries of this request's logits row (1-D, float32) to -inf."""

    def accept(self, token_id: int) -> None:  # noqa: B027 - stateless constraints skip it
        """Advance past the sampled token."""


class MinTokens(TokenConstraint):
    def __init__(self, min_tokens: int, banned: Collection[int]) -> None:
        self.min_tokens = min_tokens
        self.banned = torch.tensor(sorted(banned), dtype=torch.long)

    def mask(self, logits: torch.Tensor, num_output_tokens: int) -> None:
        if num_output_tokens < self.min_tokens and len(self.banned):
            logits[self.banned.to(logits.device)] = float("-inf")


class GrammarConstraint(TokenConstraint):
    def __init__(self, compiled, vocab_size: int) -> None:
        import xgrammar as xgr

        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size

    def mask(self, logits: torch.Tensor, num_output_tokens: int) -> None:
        if self.matcher.is_terminated():
            return  # only EOS was left and it was sampled; the engine stops the request
        self.matcher.fill_next_token_bitmask(self.bitmask)
        allowed = unpack_bitmask(self.bitmask[0].to(logits.device), logits.shape[-1])
        logits.masked_fill_(~allowed, float("-inf"))

    def accept(self, token_id: int) -> None:
        if not self.matcher.is_terminated():
            self.matcher.accept_token(token_id)


_BITS = torch.arange(32, dtype=torch.int32)


def unpack_bitmask(packed: torch.Tensor, size: int) -> torch.Tensor:
    """xgrammar's packed int32 bitmask (bit j of word i = token 32i + j) as a bool mask
    of `size` tokens, on the bitmask's device (plain torch ops: any device, no kernel)."""
    bits = (packed.unsqueeze(-1) >> _BITS.to(packed.device)) & 1
    mask = bits.flatten().bool()
    if mask.numel() < size:  # logits wider than the tokenizer: the extra ids are never allowed
        mask = torch.cat([mask, mask.new_zeros(size - mask.numel())])
    return mask[:size]


class ConstraintBuilder:
    """Builds requests' token constraints for one model's tokenizer, compiling each
    distinct structured-output spec once. Any thread (the server compiles off its event
    loop)."""

    def __init__(self, tokenizer, eos_ids: Collection[int], vocab_size: int | None) -> None:
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.vocab_size = vocab_size or (len(tokenizer) if tokenizer is not None else 0)
        self._compiler = None
        self._compiled: dict[StructuredOutputParams, object] = {}
        self._lock = threading.Lock()

    def compile(self, spec: StructuredOutputParams):
        """The compiled grammar of `spec`; raises ValueError for a spec xgrammar rejects
        or a model without a tokenizer."""
        found = self._compiled.get(spec)
        if found is not None:
            return found
        if self.tokenizer is None:
            raise ValueError("structured output needs a model with a tokenizer")
        import xgrammar as xgr

        with self._lock:
            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=sorted(self.eos_ids)
                )
                self._compiler = xgr.GrammarCompiler(info)
            try:
                if spec.kind == "json_object":
                    compiled = self._compiler.compile_builtin_json_grammar()
                elif spec.kind == "json_schema":
                    compiled = self._compiler.compile_json_schema(
                        spec.spec, any_whitespace=False, strict_mode=True
                    )
                else:
                    compiled = self._compiler.compile_grammar(spec.spec)
            except RuntimeError as exc:  # xgrammar reports bad schemas and grammars so
                raise ValueError(f"cannot compile {spec.kind}: {exc}") from None
            self._compiled[spec] = compiled
            return compiled

    def build(self, params: SamplingParams) -> tuple[TokenConstraint, ...]:
        """The constraints ``params`` ask for (usually none)."""
        found: list[TokenConstraint] = []
        if params.min_tokens:
            eos = set() if params.ignore_eos else set(self.eos_ids)
            found.append(MinTokens(params.min_tokens, set(params.stop_token_ids) | eos))
        spec = params.structured_output
        if spec is not None:
            found.append(GrammarConstraint(self.compile(spec), self.vocab_size))
        return tuple(found)


def apply_constraints(logits: torch.Tensor, seqs) -> tuple[torch.Tensor, list[int]]:
    """Masked logits (a copy when any row is constrained) and the constrained rows."""
    rows = [i for i, s in enumerate(seqs) if s.constraints]
    if not rows:
        return logits, rows
    logits = logits.clone()
    for i in rows:
        seq = seqs[i]
        for constraint in seq.constraints:
            constraint.mask(logits[i], seq.num_output_tokens)
    return logits, rows


def accept_tokens(rows: list[int], seqs, tokens: list[int]) -> None:
    for i in rows:
        for constraint in seqs[i].constraints:
            constraint.accept(tokens[i])
