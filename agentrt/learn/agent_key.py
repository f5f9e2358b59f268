"""`AgentKey`: which agent (and which kind of workflow) a request belongs to.

A request names its agent by an explicit hint, or is known by its *fixed prefix*: the
token ids of the rendered system prompt and tool schema, which every request of one agent
starts with. The prefix is hashed as a chain over fixed-size blocks (default 16 tokens,
the engine's page size): block i's digest covers block i and the digest of block i - 1,
so the last digest names the whole prefix, and two prefixes share their first k digests
exactly when they share their first k blocks. A partial last block is hashed with its
length. The key is stable across processes and runs (BLAKE2b, no salt).

Keys: a hint is used verbatim (`"planner"`); a hashed prefix is `"prefix:<16 hex>"`.
An empty prefix without a hint has no key (`None`): the caller cannot learn about it and
falls back to LRU. The *workflow kind* is an explicit kind hint, else the key of the
workflow's first agent (`kind_of`).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Sequence

from agentrt.learn.errors import LearnError

DEFAULT_BLOCK_SIZE = 16
PREFIX_KEY = "prefix:"
_DIGEST_BYTES = 8


class AgentKey:
    """Derives agent and workflow-kind keys; `block_size` tokens per hashed block."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise LearnError(f"block_size must be an int >= 1, got {block_size!r}")
        self.block_size = block_size

    def block_hashes(self, prefix_ids: Sequence[int]) -> list[bytes]:
        """The chained digest of every block of `prefix_ids` (the last may be partial)."""
        data = _token_bytes(prefix_ids)
        step = 4 * self.block_size
        digests: list[bytes] = []
        previous = b""
        for start in range(0, len(data), step):
            block = data[start : start + step]
            h = hashlib.blake2b(previous, digest_size=_DIGEST_BYTES)
            h.update(len(block).to_bytes(4, "little"))
            h.update(block)
            previous = h.digest()
            digests.append(previous)
        return digests

    def prefix_key(self, prefix_ids: Sequence[int]) -> str | None:
        """`"prefix:<hex>"` for a non-empty prefix, `None` for an empty one."""
        digests = self.block_hashes(prefix_ids)
        return PREFIX_KEY + digests[-1].hex() if digests else None

    def of(self, hint: str | None = None, prefix_ids: Sequence[int] = ()) -> str | None:
        """The agent key of a request: its hint when given, else its prefix's key."""
        if hint is not None:
            return _checked_hint("agent", hint)
        return self.prefix_key(prefix_ids)

    @staticmethod
    def kind_of(kind_hint: str | None, first_agent: str) -> str:
        """The workflow kind: the kind hint when given, else the first agent's key."""
        if kind_hint is not None:
            return _checked_hint("workflow kind", kind_hint)
        return first_agent


def _checked_hint(what: str, hint: object) -> str:
    if not isinstance(hint, str) or not hint:
        raise LearnError(f"{what} hint must be a non-empty string, got {hint!r}")
    return hint


def _token_bytes(prefix_ids: Sequence[int]) -> bytes:
    """The ids as 4-byte little-endian words; a non-int or out-of-range id raises."""
    if isinstance(prefix_ids, (str, bytes)):
        raise LearnError("prefix token ids must be a sequence of ints, got a string")
    try:
        words = array("I", prefix_ids)
    except (TypeError, OverflowError) as exc:
        raise LearnError(f"prefix token ids must be ints in [0, 2**32): {exc}") from None
    if sys.byteorder == "big":
        words.byteswap()
    return words.tobytes()
