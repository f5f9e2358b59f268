"""The tokens a sim engine samples: a fixed function of the request and the position.

``token(h, p) = first + (h + STRIDE * p) % span`` for a request hash ``h`` at position
``p``.
"""

from __future__ import annotations

import zlib

from agentrt.engine.sequence import Sequence

STRIDE = 7919  # a prime: consecutive positions spread over the vocabulary


class SyntheticTokens:
    """``token(h, p)`` and runs of it, for ids in ``[first, first + span)``."""

    def __init__(self, first: int, span: int) -> None:
        self.first = first
        self.span = span

    def token(self, h: int, position: int) -> int:
        return self.first + (h + STRIDE * position) % self.span

    def run(self, h: int, start: int, n: int) -> list[int]:
        """``[token(h, p) for p in range(start, start + n)]``."""
        first, span = self.first, self.span
        return [first + (h + STRIDE * p) % span for p in range(start, start + n)]


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
