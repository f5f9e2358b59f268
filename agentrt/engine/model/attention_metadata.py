"""Per-step description of where each token's KV goes and what it attends to.

Built once per engine step and shared by every layer. Tokens of the step are laid out
decodes first (one query each), then prefill chunks, each chunk contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Context positions per fixed-shape reduction in batch-invariant attention
# (`invariant_attention.py`): batch-invariant metadata pads every context to whole blocks.
INVARIANT_BLOCK = 256


@dataclass
class PrefillChunk:
    q_start: int  # offset of the chunk's first token in the step
    q_len: int
    kv_slots: torch.Tensor | None  # [kv_len] cache slots to attend over; None: only the chunk
    mask: torch.Tensor | None  # [q_len, kv_len] bool when the chunk continues cached KV
    context_start: int = 0  # tokens of the sequence before the chunk


@dataclass
class AttentionMetadata:
    slot_mapping: torch.Tensor  # [T] cache slot written by each token
    num_decodes: int  # the first num_decodes tokens are single-token decodes
    decode_slots: torch.Tensor | None  # [B, Lmax] cache slots, padded with slot 0
    decode_mask: torch.Tensor | None  # [B, Lmax] bool, None when no padding
    prefills: list[PrefillChunk]
    batch_invariant: bool = False


def _slots(block_table: list[int], start: int, end: int, page_size: int) -> torch.Tensor:
    pages = torch.tensor(block_table[start // page_size : -(-end // page_size)], dtype=torch.long)
    slots = (pages[:, None] * page_size + torch.arange(page_size)).flatten()
    offset = start - (start // page_size) * page_size
    return slots[offset : offset + end - start]


def build_attention_metadata(
    block_tables: list[list[int]],
    context_starts: list[int],
    query_lens: list[int],
    page_size: int,
    device: torch.device,
    batch_invariant: bool = False,
) -> AttentionMetadata:
    """Sequences must be ordered decodes (query_len 1) first. `context_starts[i]` is the
    number of tokens of sequence i whose KV is already cached. With `batch_invariant`,
    every context is padded to whole `INVARIANT_BLOCK`s and every prefill chunk reads its
    context from the cache through a mask."""
    write_slots: list[torch.Tensor] = []
    decode_full: list[torch.Tensor] = []
    prefills: list[PrefillChunk] = []
    num_decodes = 0
    q_offset = 0
    for table, start, q_len in zip(block_tables, context_starts, query_lens, strict=True):
        end = start + q_len
        slots = _slots(table, 0, end, page_size)
        write_slots.append(slots[start:])
        if q_len == 1 and not prefills:
            num_decodes += 1
            decode_full.append(slots)
        elif start == 0 and not batch_invariant:
            prefills.append(PrefillChunk(q_offset, q_len, None, None))
        else:
            width = _padded(end) if batch_invariant else end
            causal = torch.ones(q_len, width, dtype=torch.bool).tril(diagonal=start)
            if width != end:
                causal[:, end:] = False
                slots = torch.cat([slots, torch.zeros(width - end, dtype=torch.long)])
            prefills.append(
                PrefillChunk(q_offset, q_len, slots.to(device), causal.to(device), start)
            )
        q_offset += q_len

    decode_slots = decode_mask = None
    if decode_full:
        lengths = [len(s) for s in decode_full]
        longest = _padded(max(lengths)) if batch_invariant else max(lengths)
        decode_slots = torch.zeros(len(decode_full), longest, dtype=torch.long)
        for row, slots in enumerate(decode_full):
            decode_slots[row, : len(slots)] = slots
        if min(lengths) != longest:
            lens = torch.tensor(lengths)
            decode_mask = torch.arange(longest)[None, :] < lens[:, None]
            decode_mask = decode_mask.to(device)
        decode_slots = decode_slots.to(device)
    return AttentionMetadata(
        slot_mapping=torch.cat(write_slots).to(device),
        num_decodes=num_decodes,
        decode_slots=decode_slots,
        decode_mask=decode_mask,
        prefills=prefills,
        batch_invariant=batch_invariant,
    )


def _padded(length: int) -> int:
    return -(-length // INVARIANT_BLOCK) * INVARIANT_BLOCK
