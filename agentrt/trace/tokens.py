"""Prompt token ids for records that carry only lengths and prefix-block hashes.

Each hash id expands to the same pseudo-random block of tokens wherever it appears, so
requests that share hash blocks share token prefixes and hit the prefix cache exactly
as the original system did. `scale` shrinks lengths (and blocks) to fit small machines.
"""

from __future__ import annotations

import random

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
        rng = random.Random(f"{record.call_id}")
        return [rng.randrange(low, vocab_size) for _ in range(length)]
    assert record.block_size is not None
    block = scaled_len(record.block_size, scale)
    tokens: list[int] = []
    for hash_id in record.hash_ids:
        rng = random.Random(hash_id)
        tokens.extend(rng.randrange(low, vocab_size) for _ in range(block))
        if len(tokens) >= length:
            break
    if len(tokens) < length:  # more tokens than blocks cover: a unique tail
        rng = random.Random(f"{record.call_id}-tail")
        tokens.extend(rng.randrange(low, vocab_size) for _ in range(length - len(tokens)))
    return tokens[:length]
