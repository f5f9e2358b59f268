"""Host<->device KV copies in virtual time, on the cost model's one link.

Offloads (write-back on eviction, write-through at insert) occupy the link, delaying
later copies, but the engine does not wait for them. A load's future completes once the
virtual clock reaches the load's finish time on the link; when the batcher has nothing
else to run, `wait` advances the clock to the earliest pending load.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future

from agentrt.engine.clock import VirtualClock
from agentrt.engine.cost_model.runner import CostModelRunner
from agentrt.kvmanager.transfer import TransferOp


class VirtualFuture(Future[None]):
    """Done once `clock` reaches `finish_at` (unless cancelled before)."""

    def __init__(self, clock: VirtualClock, finish_at: float) -> None:
        super().__init__()
        self.clock = clock
        self.finish_at = finish_at

    def done(self) -> bool:
        due = not super().done() and self.clock.now() >= self.finish_at
        if due and self.set_running_or_notify_cancel():
            self.set_result(None)
        return super().done()


class SimKVTransfer:
    def __init__(self, runner: CostModelRunner, page_bytes: int) -> None:
        self.runner = runner
        self.page_bytes = page_bytes

    def offload(self, op: TransferOp) -> None:
        self.runner.start_transfer(op.num_pages * self.page_bytes)

    def load(self, op: TransferOp) -> Future[None]:
        finish = self.runner.start_transfer(op.num_pages * self.page_bytes)
        return VirtualFuture(self.runner.clock, finish)

    def wait(self, futures: Iterable[Future[None]], timeout: float | None = None) -> None:
        pending = [f for f in futures if isinstance(f, VirtualFuture) and not f.done()]
        if pending:
            self.runner.wait_until(min(f.finish_at for f in pending))
