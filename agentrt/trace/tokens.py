"""Prompt token ids for records that carry only lengths and prefix-block hashes.

Each hash id expands to the same pseudo-random block of tokens wherever it appears, so
requests that share hash blocks share token prefixes. `scale` shrinks lengths and blocks.
"""

from __future__ import annotations

import hashlib

import numpy as np

from agentrt.trace.schema import CallRecord


def scaled_len(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def prompt_tokens(record: CallRecord, vocab_size: int, scale: float = 1.0) -> list[int]:
    """Token ids of `record`'s prompt; recorded ids are used as they are (unscaled)."""
    if record.prompt_token_ids is not None:
        return list(record.prompt_token_ids)
    length = scaled_len(record.prompt_len, scale)
    low = min(100, vocab_size // 2)
    if record.hash_ids is None:
        return _block(_seed(record.call_id), length, low, vocab_size)
    assert record.block_size is not None
    block = scaled_len(record.block_size, scale)
    tokens: list[int] = []
    for hash_id in record.hash_ids:
        if len(tokens) >= length:
            break
        # the block's first tokens only, when the prompt ends inside it (a block's tokens
        # are a stream: its first k are the same however many are drawn)
        tokens.extend(_block(hash_id, min(block, length - len(tokens)), low, vocab_size))
    if len(tokens) < length:  # more tokens than blocks cover: a unique tail
        tail = _seed(f"{record.call_id}-tail")
        tokens.extend(_block(tail, length - len(tokens), low, vocab_size))
    return tokens[:length]


def _block(hash_id: int, size: int, low: int, high: int) -> list[int]:
    """The tokens of one hash block: a pure function of its id (numpy, so a 12k-token
    prompt costs microseconds, not a Python loop per token)."""
    rng = np.random.default_rng(hash_id & 0xFFFFFFFFFFFFFFFF)
    return rng.integers(low, high, size, dtype=np.int64).tolist()


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
