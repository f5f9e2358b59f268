"""The tokens a sim engine samples: a fixed function of the request and the position.

``token(h, p) = first + (h + STRIDE * p) % span`` for a request hash ``h`` at position
``p``. Consecutive positions step through the residues by ``STRIDE``; where ``STRIDE`` is
invertible mod ``span`` they are a slice of one precomputed cycle, so a run of ``n``
tokens costs a slice, not ``n`` multiplications (the decode fast paths append runs).
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

from agentrt.engine.sequence import Sequence

STRIDE = 7919  # a prime: consecutive positions spread over the vocabulary


@lru_cache(maxsize=8)
def _cycle(first: int, span: int) -> list[int]:
    """``first + (STRIDE * k) % span`` for k in [0, 2 * span): any ``span`` consecutive
    entries from an index below ``span`` are one slice."""
    return [first + (STRIDE * k) % span for k in range(2 * span)]


class SyntheticTokens:
    """``token(h, p)`` and runs of it, for ids in ``[first, first + span)``."""

    def __init__(self, first: int, span: int) -> None:
        self.first = first
        self.span = span
        self._inverse = pow(STRIDE, -1, span) if span > 1 and math.gcd(STRIDE, span) == 1 else None

    def token(self, h: int, position: int) -> int:
        return self.first + (h + STRIDE * position) % self.span

    def run(self, h: int, start: int, n: int) -> list[int]:
        """``[token(h, p) for p in range(start, start + n)]``."""
        span = self.span
        if self._inverse is None or n > span:
            return [self.first + (h + STRIDE * p) % span for p in range(start, start + n)]
        # STRIDE * j == h + STRIDE * start (mod span): the run is the cycle from j
        j = (h + STRIDE * start) % span * self._inverse % span
        return _cycle(self.first, span)[j : j + n]


class RequestTokens:
    """The synthetic tokens of each request: `SyntheticTokens` under the crc32 of its
    request id (kept per request until `forget`). Shared by the cost-model runner (the
    tokens it samples) and its `DecodeGroup` (the tokens its members decode)."""

    def __init__(self, tokens: SyntheticTokens) -> None:
        self.tokens = tokens
        self._hashes: dict[str, int] = {}

    def _hash(self, request_id: str) -> int:
        h = self._hashes.get(request_id)
        if h is None:
            h = self._hashes[request_id] = zlib.crc32(request_id.encode())
        return h

    def token(self, request_id: str, position: int) -> int:
        """The token sampled at ``position`` of request ``request_id``."""
        return self.tokens.token(self._hash(request_id), position)

    def append(self, seq: Sequence, n: int) -> None:
        """Append to ``seq`` the ``n`` tokens it samples next."""
        ids = seq.token_ids
        ids.extend(self.tokens.run(self._hash(seq.request_id), len(ids), n))

    def forget(self, request_id: str) -> None:
        self._hashes.pop(request_id, None)
