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
    context_start: int  # tokens of the sequence before the chunk
    block_table: torch.Tensor  # [pages] int64 covering the context and the chunk
    # Batch-invariant mode only: the context's slots and the causal mask, padded to
    # whole `INVARIANT_BLOCK`s ([width] and [q_len, width] bool).
    kv_slots: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@dataclass
class AttentionMetadata:
    slot_mapping: torch.Tensor  # [T] cache slot written by each token
    num_decodes: int  # the first num_decodes tokens are single-token decodes
    decode_block_tables: torch.Tensor | None  # [B, P] int64 pages, padded with page 0
    decode_context_lens: torch.Tensor | None  # [B] int64 context length of each decode
    prefills: list[PrefillChunk]
    page_size: int
    batch_invariant: bool = False

    def decode_slots(self, width: int) -> torch.Tensor:
        """[B, width] cache slot of every decode position (page 0 past the table)."""
        assert self.decode_block_tables is not None
        tables = self.decode_block_tables
        offsets = torch.arange(self.page_size, device=tables.device)
        return (tables[:, :, None] * self.page_size + offsets).flatten(1)[:, :width]


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
    decode tables cover whole `INVARIANT_BLOCK`s and every prefill chunk reads its
    context from the cache through a mask padded to whole blocks."""
    decode_writes: list[int] = []
    decode_tables: list[list[int]] = []
    write_slots: list[torch.Tensor] = []
    prefills: list[PrefillChunk] = []
    q_offset = 0
    for table, start, q_len in zip(block_tables, context_starts, query_lens, strict=True):
        end = start + q_len
        if q_len == 1 and not prefills:
            decode_writes.append(table[start // page_size] * page_size + start % page_size)
            decode_tables.append(table[: -(-end // page_size)])
            q_offset += 1
            continue
        write_slots.append(_slots(table, start, end, page_size))
        pages = torch.tensor(table[: -(-end // page_size)], dtype=torch.long).to(device)
        chunk = PrefillChunk(q_offset, q_len, start, pages)
        if batch_invariant:
            width = _padded(end)
            slots = _slots(table, 0, end, page_size)
            chunk.kv_slots = torch.cat([slots, torch.zeros(width - end, dtype=torch.long)])
            causal = torch.ones(q_len, width, dtype=torch.bool).tril(diagonal=start)
            causal[:, end:] = False
            chunk.kv_slots, chunk.mask = chunk.kv_slots.to(device), causal.to(device)
        prefills.append(chunk)
        q_offset += q_len

    tables = lens = None
    if decode_tables:
        lengths = [start + 1 for start in context_starts[: len(decode_tables)]]
        longest = _padded(max(lengths)) if batch_invariant else max(lengths)
        width = -(-longest // page_size)
        rows = [t + [0] * (width - len(t)) for t in decode_tables]
        tables = torch.tensor(rows, dtype=torch.long).to(device)
        lens = torch.tensor(lengths, dtype=torch.long).to(device)
        write_slots.insert(0, torch.tensor(decode_writes, dtype=torch.long))
    return AttentionMetadata(
        slot_mapping=torch.cat(write_slots).to(device),
        num_decodes=len(decode_tables),
        decode_block_tables=tables,
        decode_context_lens=lens,
        prefills=prefills,
        page_size=page_size,
        batch_invariant=batch_invariant,
    )


def _padded(length: int) -> int:
    return -(-length // INVARIANT_BLOCK) * INVARIANT_BLOCK
