"""Transfer orders between the device and host page pools, and the backend protocol.

The radix tree decides *what* moves (``TransferOp``); a ``KVTransfer`` backend moves the
bytes, never touching bookkeeping:

- ``offload(op)`` copies ``device_pages -> host_pages`` and returns when done.
- ``load(op)`` starts copying ``host_pages -> device_pages`` and returns a ``Future``,
  polled from the engine thread. A failed future means the KV was not loaded; one that
  can still be cancelled has not touched the device pages.
- ``wait(futures, timeout)`` blocks until one of ``futures`` is done or ``timeout``
  passes (`wait_first`); a backend in virtual time advances its clock instead.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class TransferOp:
    kind: Literal["offload", "load"]
    device_pages: tuple[int, ...]
    host_pages: tuple[int, ...]

    @property
    def num_pages(self) -> int:
        return len(self.device_pages)


class KVTransfer(Protocol):
    def offload(self, op: TransferOp) -> None: ...

    def load(self, op: TransferOp) -> Future[None]: ...

    def wait(self, futures: Iterable[Future[None]], timeout: float | None = None) -> None: ...


def wait_first(futures: Iterable[Future[None]], timeout: float | None = None) -> None:
    """`KVTransfer.wait` in wall-clock time: until the first of ``futures`` is done."""
    cf.wait(list(futures), timeout, return_when=cf.FIRST_COMPLETED)


def done_future() -> Future[None]:
    fut: Future[None] = Future()
    fut.set_result(None)
    return fut


class NullTransfer:
    """Bookkeeping only (tests, cost model): offloads are no-ops, loads finish at once."""

    def __init__(self) -> None:
        self.ops: list[TransferOp] = []

    def offload(self, op: TransferOp) -> None:
        self.ops.append(op)

    def load(self, op: TransferOp) -> Future[None]:
        self.ops.append(op)
        return done_future()

    def wait(self, futures: Iterable[Future[None]], timeout: float | None = None) -> None:
        wait_first(futures, timeout)


class ManualTransfer(NullTransfer):
    """Loads stay pending until the caller resolves them (tests drive in-flight loads)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[TransferOp, Future[None]]] = []

    def load(self, op: TransferOp) -> Future[None]:
        self.ops.append(op)
        fut: Future[None] = Future()
        self.pending.append((op, fut))
        return fut

    def finish(self, index: int = 0, error: BaseException | None = None) -> TransferOp:
        """Complete the ``index``-th pending load (successfully unless ``error``)."""
        op, fut = self.pending.pop(index)
        if fut.set_running_or_notify_cancel():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)
        return op
