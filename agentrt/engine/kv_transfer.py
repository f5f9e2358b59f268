"""Copies KV pages between the device cache and a host cache of the same layout.

Caches are per layer `(k, v)` tensors `[num_kv_heads, num_slots, head_dim]`, page `p`
owning slots `p * page_size .. (p + 1) * page_size - 1`. Offloads run synchronously on
the engine thread; loads run on one worker thread (on CUDA inside their own stream, so
they overlap compute) and complete a `Future` the KV manager polls.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from agentrt.kvmanager.transfer import TransferOp

KVCaches = list[tuple[torch.Tensor, torch.Tensor]]


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
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kv-load")
        self.fail_next_loads = 0  # tests: make the next N loads raise

    def _slots(self, pages: tuple[int, ...], device: torch.device) -> torch.Tensor:
        ps = self.page_size
        base = torch.tensor(pages, dtype=torch.long).unsqueeze(1) * ps
        return (base + torch.arange(ps)).reshape(-1).to(device)

    @torch.no_grad()
    def offload(self, op: TransferOp) -> None:
        dev = self._slots(op.device_pages, self.device)
        host = self._slots(op.host_pages, torch.device("cpu"))
        for (dk, dv), (hk, hv) in zip(self.device_caches, self.host_caches, strict=True):
            hk.index_copy_(1, host, dk.index_select(1, dev).to("cpu"))
            hv.index_copy_(1, host, dv.index_select(1, dev).to("cpu"))

    def load(self, op: TransferOp) -> Future[None]:
        if self.fail_next_loads > 0:
            self.fail_next_loads -= 1
            return self.executor.submit(_fail, op)
        return self.executor.submit(self._load, op)

    @torch.no_grad()
    def _load(self, op: TransferOp) -> None:
        dev = self._slots(op.device_pages, self.device)
        host = self._slots(op.host_pages, torch.device("cpu"))
        if self.stream is None:
            self._copy_in(dev, host)
            return
        with torch.cuda.stream(self.stream):  # untested here: no CUDA in CI
            self._copy_in(dev, host)
        self.stream.synchronize()

    def _copy_in(self, dev: torch.Tensor, host: torch.Tensor) -> None:
        nb = self.stream is not None
        for (dk, dv), (hk, hv) in zip(self.device_caches, self.host_caches, strict=True):
            dk.index_copy_(1, dev, hk.index_select(1, host).to(self.device, non_blocking=nb))
            dv.index_copy_(1, dev, hv.index_select(1, host).to(self.device, non_blocking=nb))

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def _fail(op: TransferOp) -> None:
    raise RuntimeError(f"injected load failure of {op.num_pages} pages")
