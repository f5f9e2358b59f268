"""Copies KV pages between the device cache and a host cache of the same layout.

Caches are per layer `(k, v)` tensors `[num_kv_heads, num_slots, head_dim]`, page `p`
owning slots `p * page_size ..`. Offloads run synchronously on the engine thread; loads
on one worker thread (on CUDA in their own stream) complete a `Future` the KV manager
polls. Runs of consecutive pages copy as slices; on CPU the load thread copies in pieces
below ATen's parallel grain, so it never starts a second OpenMP team (compute_thread.py).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from agentrt.kvmanager.transfer import TransferOp, wait_first

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]
ATEN_GRAIN = 32_768  # elements: ATen runs smaller element-wise ops without OpenMP


def page_runs(dst_pages: tuple[int, ...], src_pages: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """`(dst_first, src_first, count)` for each maximal run where both page lists
    continue consecutively, in order."""
    runs: list[tuple[int, int, int]] = []
    for dst, src in zip(dst_pages, src_pages, strict=True):
        if runs:
            d0, s0, n = runs[-1]
            if dst == d0 + n and src == s0 + n:
                runs[-1] = (d0, s0, n + 1)
                continue
        runs.append((dst, src, 1))
    return runs


def copy_pages(
    dst_caches: KVCaches,
    src_caches: KVCaches,
    dst_pages: tuple[int, ...],
    src_pages: tuple[int, ...],
    page_size: int,
    max_slots: int | None = None,
    non_blocking: bool = False,
) -> None:
    """Copy pages `src_pages` of `src_caches` into `dst_pages` of `dst_caches`, slicing
    at most `max_slots` slots per copy."""
    for dst, src, count in page_runs(dst_pages, src_pages):
        d, s, n = dst * page_size, src * page_size, count * page_size
        step = n if max_slots is None else max_slots
        for off in range(0, n, step):
            m = min(step, n - off)
            for pair_dst, pair_src in zip(dst_caches, src_caches, strict=True):
                for t_dst, t_src in zip(pair_dst, pair_src, strict=True):
                    t_dst[:, d + off : d + off + m].copy_(
                        t_src[:, s + off : s + off + m], non_blocking=non_blocking
                    )


def allocate_host_caches(like: KVCaches, num_host_pages: int, page_size: int) -> KVCaches:
    """Host caches shaped like `like` with `num_host_pages` pages (pinned on CUDA)."""
    out = []
    for k, _ in like:
        shape = (k.shape[0], num_host_pages * page_size, k.shape[2])
        pin = k.device.type == "cuda"
        pair = tuple(torch.zeros(shape, dtype=k.dtype, pin_memory=pin) for _ in range(2))
        out.append(pair)
    return out


class TorchKVTransfer:
    def __init__(self, device_caches: KVCaches, host_caches: KVCaches, page_size: int) -> None:
        self.device_caches = device_caches
        self.host_caches = host_caches
        self.page_size = page_size
        self.device = device_caches[0][0].device
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.executor = ThreadPoolExecutor(
            1,
            thread_name_prefix="kv-load",
            initializer=None if self.stream is not None else _yield_to_compute,
        )
        self.fail_next_loads = 0  # tests: make the next N loads raise

    @torch.no_grad()
    def offload(self, op: TransferOp) -> None:
        copy_pages(
            self.host_caches, self.device_caches, op.host_pages, op.device_pages, self.page_size
        )

    def load(self, op: TransferOp) -> Future[None]:
        if self.fail_next_loads > 0:
            self.fail_next_loads -= 1
            return self.executor.submit(_fail, op)
        return self.executor.submit(self._load, op)

    @torch.no_grad()
    def _load(self, op: TransferOp) -> None:
        args = (self.device_caches, self.host_caches, op.device_pages, op.host_pages)
        if self.stream is None:
            k = self.device_caches[0][0]
            copy_pages(*args, self.page_size, max_slots=_serial_slots(k))
            return
        with torch.cuda.stream(self.stream):  # pinned host -> device, async on its stream
            copy_pages(*args, self.page_size, non_blocking=True)
        self.stream.synchronize()

    def wait(self, futures: Iterable[Future[None]], timeout: float | None = None) -> None:
        wait_first(futures, timeout)

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _yield_to_compute() -> None:
    """CPU loads share the cores with the compute thread's OpenMP team; a team thread
    that loses its core to the copy stalls the whole step, so the copy runs at the
    lowest priority and fills the gaps between steps instead (Linux: per-thread nice)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux / not allowed: as is
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _serial_slots(cache: torch.Tensor) -> int:
    """Slots per copy that keep one copy under ATen's parallel grain."""
    return max(1, (ATEN_GRAIN - 1) // (cache.shape[0] * cache.shape[2]))


def _fail(op: TransferOp) -> None:
    raise RuntimeError(f"injected load failure of {op.num_pages} pages")
