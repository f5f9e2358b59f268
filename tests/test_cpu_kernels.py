"""The fused CPU kernels (cpu_kernels/*.cpp) against their plain torch reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agentrt.engine.model.cpu_build import CpuKernels, build_cpu_kernels
from agentrt.engine.model.kernels import PLAIN

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
TOL = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


@pytest.fixture(scope="module")
def fused() -> CpuKernels:
    ops = build_cpu_kernels()
    if ops is None:
        pytest.skip("the C++ kernels cannot be built here (no compiler or ninja)")
    return CpuKernels(ops)


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a.float(), b.float(), atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_norms_rope_and_swiglu_match_plain(fused: CpuKernels, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 576, generator=gen).to(dtype)
    w = torch.randn(576, generator=gen).to(dtype)
    _close(fused.rms_norm(x, w, 1e-5), PLAIN.rms_norm(x, w, 1e-5), dtype)

    delta = torch.randn(7, 576, generator=gen).to(dtype)
    r_fused, r_plain = x.clone(), x.clone()
    out_fused = fused.add_rms_norm_(r_fused, delta, w, 1e-5)
    out_plain = PLAIN.add_rms_norm_(r_plain, delta, w, 1e-5)
    assert torch.equal(r_fused, r_plain)  # the residual add rounds like a torch add
    _close(out_fused, out_plain, dtype)

    gate_up = torch.randn(5, 2 * 100, generator=gen).to(dtype)  # odd width: a scalar tail
    _close(fused.silu_mul(gate_up), PLAIN.silu_mul(gate_up), dtype)

    qkv = torch.randn(6, 9 * 64 + 2 * 3 * 64, generator=gen).to(dtype)
    positions = torch.tensor([0, 1, 17, 300, 5, 2047])
    cos, sin = torch.randn(2048, 64, generator=gen), torch.randn(2048, 64, generator=gen)
    for tables in ((cos, sin), (cos.to(dtype), sin.to(dtype))):
        got, want = qkv.clone(), qkv.clone()
        for buf, kernels in ((got, fused), (want, PLAIN)):  # q and k as views, like the model
            q = buf[:, : 9 * 64].view(6, 9, 64)
            k = buf[:, 9 * 64 : 12 * 64].view(6, 3, 64)
            kernels.rope_(q, k, positions, *tables)
        _close(got, want, dtype)
        assert torch.equal(got[:, 12 * 64 :], qkv[:, 12 * 64 :])  # v untouched


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("heads", "kv_heads", "dim"),
    [(9, 3, 64), (8, 8, 64), (16, 2, 128), (6, 2, 48), (18, 2, 64)],  # last two: generic loops
)
def test_decode_attention_matches_plain(
    fused: CpuKernels, dtype: torch.dtype, heads: int, kv_heads: int, dim: int
) -> None:
    gen = torch.Generator().manual_seed(1)
    page, num_pages = 16, 40
    k_cache = torch.randn(kv_heads, page * num_pages, dim, generator=gen).to(dtype)
    v_cache = torch.randn(kv_heads, page * num_pages, dim, generator=gen).to(dtype)
    lengths = [1, 16, 17, 150, 33]
    order = torch.randperm(num_pages, generator=gen).tolist()  # pages scattered in the pool
    width = -(-max(lengths) // page)
    tables, used = [], 0
    for n in lengths:
        pages = -(-n // page)
        tables.append(order[used : used + pages] + [0] * (width - pages))
        used += pages
    block_tables, lens = torch.tensor(tables), torch.tensor(lengths)
    q = torch.randn(len(lengths), heads, dim, generator=gen).to(dtype)
    args = (q, k_cache, v_cache, block_tables, lens, page, dim**-0.5)
    _close(fused.decode_attention(*args), PLAIN.decode_attention(*args), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("heads", "kv_heads", "dim"),
    [(9, 3, 64), (8, 8, 64), (16, 2, 128), (6, 2, 48)],  # 48: not the bf16 dot-product path
)
@pytest.mark.parametrize(("q_len", "start"), [(1, 0), (37, 0), (64, 100), (200, 333), (70, 1)])
def test_prefill_attention_matches_plain(
    fused: CpuKernels,
    dtype: torch.dtype,
    heads: int,
    kv_heads: int,
    dim: int,
    q_len: int,
    start: int,
) -> None:
    gen = torch.Generator().manual_seed(3)
    page, num_pages = 16, 64
    k_cache = torch.randn(kv_heads, page * num_pages, dim, generator=gen).to(dtype)
    v_cache = torch.randn(kv_heads, page * num_pages, dim, generator=gen).to(dtype)
    pages = -(-(start + q_len) // page)
    table = torch.randperm(num_pages, generator=gen)[:pages]
    qkv = torch.randn(q_len, heads * dim + 8, generator=gen).to(dtype)
    q = qkv[:, : heads * dim].view(q_len, heads, dim)  # a view, as the model passes it
    args = (q, k_cache, v_cache, table, start, page, dim**-0.5)
    _close(fused.prefill_attention(*args), PLAIN.prefill_attention(*args), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_kv_matches_plain(fused: CpuKernels, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(4)
    qkv = torch.randn(5, 9 * 64 + 2 * 3 * 64, generator=gen).to(dtype)
    k = qkv[:, 9 * 64 : 12 * 64].view(5, 3, 64)  # views, as the model passes them
    v = qkv[:, 12 * 64 :].view(5, 3, 64)
    slots = torch.tensor([7, 0, 63, 12, 40])
    caches = [torch.randn(3, 64, 64, generator=gen).to(dtype) for _ in range(2)]
    got, want = [c.clone() for c in caches], [c.clone() for c in caches]
    fused.write_kv_(k, v, *got, slots)
    PLAIN.write_kv_(k, v, *want, slots)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    with pytest.raises(RuntimeError, match="outside the cache"):
        fused.write_kv_(k, v, *got, torch.tensor([7, 0, 64, 12, 40]))


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
@pytest.mark.parametrize(("k", "n"), [(576, 960), (1536, 576), (100, 7), (33, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_matvec_matches_linear(fused: CpuKernels, rows: int, k: int, n: int, bias: bool) -> None:
    if torch.bfloat16 not in fused.matvec_dtypes():
        pytest.skip("this CPU has no AVX-512 BF16")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(rows, k, generator=gen).to(torch.bfloat16)
    w = torch.randn(n, k, generator=gen).to(torch.bfloat16)
    b = torch.randn(n, generator=gen).to(torch.bfloat16) if bias else None
    want = F.linear(x.float(), w.float(), None if b is None else b.float())
    tiled = fused.tile_matvec_weight(w)
    got = fused.matvec(x, tiled, b, n)
    assert got.shape == (rows, n) and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=0.02 * want.abs().max().item(), rtol=0.0)
    assert torch.equal(fused.matvec(x[:1], tiled, b, n), got[:1])  # a row's bits alone


def test_matvec_refuses_what_it_does_not_run(fused: CpuKernels) -> None:
    if torch.bfloat16 not in fused.matvec_dtypes():
        pytest.skip("this CPU has no AVX-512 BF16")
    w = torch.randn(8, 64).to(torch.bfloat16)
    tiled = fused.tile_matvec_weight(w)
    with pytest.raises(RuntimeError, match="1 <= M <= 4"):
        fused.matvec(torch.randn(5, 64).to(torch.bfloat16), tiled, None, 8)
    with pytest.raises(RuntimeError, match="tile_matvec_weight"):
        fused.matvec(torch.randn(1, 64).to(torch.bfloat16), w, None, 8)


def test_decode_attention_is_batch_invariant(fused: CpuKernels) -> None:
    gen = torch.Generator().manual_seed(2)
    k_cache = torch.randn(3, 16 * 20, 64, generator=gen).to(torch.bfloat16)
    v_cache = torch.randn(3, 16 * 20, 64, generator=gen).to(torch.bfloat16)
    q = torch.randn(2, 9, 64, generator=gen).to(torch.bfloat16)
    tables, lens = torch.tensor([[3, 4, 5], [9, 0, 0]]), torch.tensor([40, 7])
    both = fused.decode_attention(q, k_cache, v_cache, tables, lens, 16, 0.125)
    alone = fused.decode_attention(q[1:], k_cache, v_cache, tables[1:], lens[1:], 16, 0.125)
    assert torch.equal(both[1:], alone)


def test_bad_inputs_fail_with_a_clear_error(fused: CpuKernels) -> None:
    q = torch.randn(2, 9, 64)
    cache = torch.randn(3, 64, 64)
    with pytest.raises(RuntimeError, match="int64"):
        fused.decode_attention(
            q, cache, cache, torch.zeros(2, 4, dtype=torch.int32), torch.tensor([3, 4]), 16, 0.125
        )
    with pytest.raises(RuntimeError, match="multiple of KV heads"):
        fused.decode_attention(
            torch.randn(2, 8, 64),
            cache,
            cache,
            torch.zeros(2, 4, dtype=torch.long),
            torch.tensor([3, 4]),
            16,
            0.125,
        )
    with pytest.raises(RuntimeError, match="contiguous"):
        fused.rms_norm(torch.randn(8, 4).t(), torch.ones(8), 1e-5)
    with pytest.raises(RuntimeError, match="shorter than the context"):
        fused.prefill_attention(q, cache, cache, torch.tensor([0, 1]), 31, 16, 0.125)
