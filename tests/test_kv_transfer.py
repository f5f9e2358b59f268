"""Page copies between the device and host KV caches."""

from __future__ import annotations

import os
import random

import torch
from hypothesis import given
from hypothesis import strategies as st

from agentrt.engine.kv_transfer import TorchKVTransfer, copy_pages, page_runs
from agentrt.kvmanager.transfer import TransferOp


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=30))
def test_page_runs_cover_the_pairs_in_order(pairs) -> None:
    dst = tuple(d for d, _ in pairs)
    src = tuple(s for _, s in pairs)
    runs = page_runs(dst, src)
    expanded = [(d + i, s + i) for d, s, n in runs for i in range(n)]
    assert expanded == list(pairs)
    for (d0, s0, n0), (d1, s1, _) in zip(runs, runs[1:], strict=False):
        assert not (d1 == d0 + n0 and s1 == s0 + n0)  # maximal


def _caches(layers: int, pages: int, page_size: int, fill: bool) -> list:
    shape = (3, pages * page_size, 8)
    make = torch.randn if fill else torch.zeros
    return [(make(shape), make(shape)) for _ in range(layers)]


def test_copy_pages_matches_a_gather_for_any_slice_size() -> None:
    rng = random.Random(0)
    ps = 4
    src = _caches(2, 12, ps, fill=True)
    src_pages = tuple(rng.sample(range(12), 7))
    dst_pages = tuple(sorted(rng.sample(range(10), 7)))
    for max_slots in (None, 1, 3, 4, 9):
        dst = _caches(2, 10, ps, fill=False)
        copy_pages(dst, src, dst_pages, src_pages, ps, max_slots=max_slots)
        for (dk, dv), (sk, sv) in zip(dst, src, strict=True):
            for d, s in zip(dst_pages, src_pages, strict=True):
                assert torch.equal(dk[:, d * ps : (d + 1) * ps], sk[:, s * ps : (s + 1) * ps])
                assert torch.equal(dv[:, d * ps : (d + 1) * ps], sv[:, s * ps : (s + 1) * ps])


def test_cpu_loads_start_no_openmp_team_of_their_own() -> None:
    """A second OpenMP team (new OS threads) would throttle the compute thread's."""
    ps = 16
    device = [(torch.zeros(3, 4096 * ps, 64), torch.zeros(3, 4096 * ps, 64)) for _ in range(2)]
    host = [(torch.randn(3, 4096 * ps, 64), torch.randn(3, 4096 * ps, 64)) for _ in range(2)]
    transfer = TorchKVTransfer(device, host, ps)
    try:
        transfer.load(TransferOp("load", (0,), (1,))).result()  # starts the worker thread
        before = len(os.listdir("/proc/self/task"))
        pages = tuple(range(2048))
        transfer.load(TransferOp("load", pages, tuple(p + 2048 for p in pages))).result()
        assert len(os.listdir("/proc/self/task")) == before
        assert torch.equal(device[1][0][:, : 2048 * ps], host[1][0][:, 2048 * ps :])
    finally:
        transfer.close()
